"""Offline LiRA, the likelihood-ratio attack of Carlini et al. (2022, "Membership Inference
Attacks From First Principles"), in its offline form.

Shadow systems are trained on random halves of the attacker's pairs only, so every target
candidate is OUT for every shadow and no shadow has to be retrained per candidate. For each
candidate the attack fits a Gaussian to the shadows' logit-scaled confidence on its true label,
phi = log(p_y / (1 - p_y)), and measures how far above that OUT distribution the target's phi
lies: a training pair gets an unusually confident answer.

The score is a function of a signal table (`lira_offline_scores`, OUT shadows only), so it
also runs on the table online LiRA and RMIA share; the attack builds its own table, without
a population, from the shadows it trained in `fit`, where every candidate is OUT.
"""

from __future__ import annotations

import numpy as np

from facebone.attacks.base import AttackError, QueryFn, ShadowTrainer, logit_confidence, query
from facebone.attacks.membership.base import (
    ShadowAttack,
    balanced_sample,
    best_threshold,
    split_at_random,
    train_shadows,
)
from facebone.attacks.membership.signals import SignalTable, measure_signals
from facebone.attacks.registry import register_attack
from facebone.data.pairs import Pair, pair_labels

VARIANCES = ("auto", "global", "per-pair")
# Carlini et al. find a global variance better below about 64 shadow models.
GLOBAL_VARIANCE_BELOW = 64
# Floor on the OUT standard deviation (in logit units): shadows that all saturate would
# otherwise give an infinite score.
MIN_STD = 1e-3


def _out_gaussian(phi: np.ndarray, out: np.ndarray, per_pair: bool) -> tuple:
    """Mean and std of `phi` (shadows x pairs) over the entries where `out` is True.

    Returns (mean, std, usable): `usable` marks pairs with enough OUT shadows.
    """
    count = out.sum(axis=0)
    mean = np.where(count > 0, (phi * out).sum(axis=0) / np.maximum(count, 1), 0.0)
    residual = (phi - mean) * out
    if per_pair:
        var = (residual**2).sum(axis=0) / np.maximum(count - 1, 1)
        usable = count >= 2
    else:
        var = np.full(phi.shape[1], (residual**2).sum() / max(int(count.sum()) - 1, 1))
        usable = count >= 1
    return mean, np.maximum(np.sqrt(var), MIN_STD), usable


def check_variance(variance: str, n_shadows: int) -> None:
    """`variance` is one of `VARIANCES`, and "per-pair" has shadows enough."""
    if variance not in VARIANCES:
        raise AttackError(f"variance must be one of {', '.join(VARIANCES)}, got {variance!r}.")
    if variance == "per-pair" and n_shadows < 3:
        raise AttackError("a per-pair variance needs n_shadows >= 3; use variance='global'.")


def per_pair_variance(variance: str, n_shadows: int) -> bool:
    """Whether `variance` means one variance per pair ("auto": from 64 shadows up)."""
    return variance == "per-pair" or (variance == "auto" and n_shadows >= GLOBAL_VARIANCE_BELOW)


def lira_offline_scores(table: SignalTable, variance: str = "auto") -> np.ndarray:
    """Offline LiRA on a signal table: z = (phi_target - mean_out) / std_out per candidate,
    from the OUT shadows only (`variance` as `LiRAAttack`'s). A candidate with too few OUT
    shadows (none; one for a per-pair variance) scores 0: no evidence either way."""
    signals = table.candidates
    check_variance(variance, signals.n_shadows)
    per_pair = per_pair_variance(variance, signals.n_shadows)
    mean, std, usable = _out_gaussian(signals.shadow_phi.T, ~signals.inside.T, per_pair)
    return np.where(usable, (signals.target_phi - mean) / std, 0.0)


@register_attack("lira")
class LiRAAttack(ShadowAttack):
    """Offline LiRA on the target's confidence in each pair's true label.

    Parameters
    ----------
    n_shadows : shadow systems, each trained on a random half of the attacker's pairs (>= 2).
    shadow_size : each shadow trains on this many label-balanced pairs drawn from its half
        (the target's training-set size; None: the whole half).
    variance : "per-pair" (a Gaussian per candidate), "global" (one variance shared by all
        candidates, steadier with few shadows) or "auto" (global below 64 shadows).
    seed : seeds the halves and shadow training.

    The score is z = (phi_target - mean_out) / std_out; `scipy.stats.norm.cdf(z)` is the
    one-sided likelihood that the target's phi lies above the OUT distribution. The z-score
    ranks identically and does not saturate at 1.0 for strongly memorised pairs, which matters
    for TPR at low FPR.

    Fitted attributes: `shadows_` (the shadows' query functions), `training_sets_` (the
    pairs each trained on), `per_pair_variance_`,
    `threshold_` (chosen on the attacker's pairs: each shadow in turn plays the target and the
    others give the OUT statistics).
    """

    name = "lira"
    min_shadows = 2

    def __init__(
        self,
        n_shadows: int = 16,
        variance: str = "auto",
        seed: int = 0,
        shadow_size: int | None = None,
    ) -> None:
        self.n_shadows = n_shadows
        self.variance = variance
        self.seed = seed
        self.shadow_size = shadow_size

    def _check_params(self) -> None:
        super()._check_params()
        check_variance(self.variance, self.n_shadows)

    def _fit(self, shadow_trainer: ShadowTrainer, pairs: list[Pair]) -> None:
        per_pair = per_pair_variance(self.variance, self.n_shadows)
        positions = {pair: i for i, pair in enumerate(pairs)}
        requests, inside = [], np.zeros((self.n_shadows, len(pairs)), dtype=bool)
        for k in range(self.n_shadows):
            rng = np.random.default_rng([self.seed, k, 1])
            shadow_in, _ = split_at_random(pairs, rng)
            seed = int(rng.integers(2**31 - 1))
            if self.shadow_size is not None:
                shadow_in = balanced_sample(shadow_in, self.shadow_size, rng)
            requests.append((shadow_in, seed))
            inside[k, [positions[p] for p in shadow_in]] = True
        self.shadows_ = train_shadows(shadow_trainer, requests)
        self.training_sets_ = [frozenset(shadow_in) for shadow_in, _ in requests]
        self.per_pair_variance_ = per_pair
        self.threshold_ = self._shadow_threshold(pairs, inside, per_pair)

    def _shadow_threshold(self, pairs: list[Pair], inside: np.ndarray, per_pair: bool) -> float:
        """Threshold with the best balanced accuracy when each shadow plays the target."""
        labels = pair_labels(pairs)
        phi = self._shadow_phi(pairs, labels)
        scores, truth = [], []
        for k in range(self.n_shadows):
            out = ~inside
            out[k] = False  # the pseudo-target is not its own reference
            mean, std, usable = _out_gaussian(phi, out, per_pair)
            scores.append(((phi[k] - mean) / std)[usable])
            truth.append(inside[k][usable])
        scores_all, truth_all = np.concatenate(scores), np.concatenate(truth)
        if truth_all.all() or not truth_all.any():
            return 0.0
        return best_threshold(truth_all, scores_all)

    def _shadow_phi(self, pairs: list[Pair], labels: np.ndarray) -> np.ndarray:
        """Each shadow's phi on each pair, shape (shadows, pairs)."""
        return np.stack(
            [logit_confidence(query(s, pairs, "a shadow"), labels) for s in self.shadows_]
        )

    def _infer(self, target: QueryFn, pairs: list[Pair]) -> np.ndarray:
        table = SignalTable(measure_signals(target, self.shadows_, pairs, self.training_sets_))
        return lira_offline_scores(table, "per-pair" if self.per_pair_variance_ else "global")
