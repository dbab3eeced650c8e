"""Online LiRA (Carlini et al. 2022, "Membership Inference Attacks From First Principles").

The attacker holds the candidate pairs (it has the photos and knows who is in them, not
whether the target trained on them). Each shadow system trains, the way the target did, on a
label-balanced random draw from the candidates plus the attacker's own pairs, so every
candidate is IN for some shadows and OUT for the others. For each candidate the attack fits
one Gaussian to the IN shadows' logit confidence on its true label, phi = log(p_y/(1-p_y)),
and one to the OUT shadows', and scores the target's phi by the log-likelihood ratio. No
membership label of any candidate is used: the shadows' own IN/OUT draws are the only truth
the attack learns from.

Per-candidate variances need many shadows (Carlini et al. use them from 64 up); below that one
variance per side, pooled over candidates, is steadier. A shadow trains on as many pairs as
the target (a few percent of the candidates in the leaking regime), so a candidate is IN for
few shadows even when there are many: "auto" takes a candidate's own variance on a side only
where that side has `OWN_VARIANCE_FROM` shadows or more. A candidate with no IN shadow gets
the average IN-OUT shift of the others.
"""

from __future__ import annotations

import numpy as np

from facebone.attacks.base import QueryFn, ShadowTrainer, logit_confidence, query
from facebone.attacks.membership.base import (
    balanced_sample,
    best_threshold,
    distinct,
    train_shadows,
)
from facebone.attacks.membership.lira import MIN_STD, LiRAAttack
from facebone.attacks.registry import register_attack
from facebone.data.pairs import Pair, pair_labels

# Shadows that play the target in turn when the attack picks its threshold.
THRESHOLD_PSEUDO_TARGETS = 16
# "auto" variance: a candidate's own variance on a side with at least this many shadows.
OWN_VARIANCE_FROM = 32


def _side_statistics(phi: np.ndarray, side: np.ndarray, own_from: int | None):
    """Mean and std of phi (shadows x pairs) over the entries where `side` is True, per pair;
    the std is pooled over pairs except where a pair has `own_from` entries or more."""
    count = side.sum(axis=0)
    mean = (phi * side).sum(axis=0) / np.maximum(count, 1)
    residual = ((phi - mean) * side) ** 2
    pooled = residual.sum() / max(int(count.sum()) - int((count > 0).sum()), 1)
    var = np.full(phi.shape[1], pooled)
    if own_from is not None:
        own = residual.sum(axis=0) / np.maximum(count - 1, 1)
        var = np.where(count >= max(own_from, 2), own, pooled)
    return mean, np.maximum(np.sqrt(var), MIN_STD), count


def likelihood_ratio(
    phi: np.ndarray, inside: np.ndarray, phi_target: np.ndarray, own_from: int | None
) -> np.ndarray:
    """log N(phi_target; IN) - log N(phi_target; OUT) for each pair (own variances as in
    `_side_statistics`)."""
    mean_in, std_in, count_in = _side_statistics(phi, inside, own_from)
    mean_out, std_out, count_out = _side_statistics(phi, ~inside, own_from)
    both = (count_in > 0) & (count_out > 0)
    shift = float(np.mean((mean_in - mean_out)[both])) if both.any() else 0.0
    mean_in = np.where(count_in > 0, mean_in, mean_out + shift)
    mean_out = np.where(count_out > 0, mean_out, mean_in - shift)

    def log_density(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        return -0.5 * ((phi_target - mean) / std) ** 2 - np.log(std)

    return log_density(mean_in, std_in) - log_density(mean_out, std_out)


@register_attack("lira-online")
class OnlineLiRAAttack(LiRAAttack):
    """Online LiRA: IN and OUT shadows per candidate, trained on draws from the candidates
    (LiRA's options, 64 shadows by default).

    Parameters
    ----------
    n_shadows : shadow systems (>= 4; 64 or more for per-candidate variances).
    variance : "per-pair", "global" or "auto" (a candidate's own variance on each side with
        `OWN_VARIANCE_FROM` shadows or more, else pooled).
    seed : seeds the draws and shadow training.
    shadow_size : pairs each shadow trains on (the target's training-set size; None: half
        of the candidates and attacker pairs together).

    Shadows are trained in `infer`, once the candidates are known; `fit` only keeps the
    attacker's pairs and the trainer. `threshold_` is chosen there too, on shadow data only:
    each of a few shadows plays the target, scored against the others.
    """

    name = "lira-online"
    min_shadows = 4

    def __init__(
        self,
        n_shadows: int = 64,
        variance: str = "auto",
        seed: int = 0,
        shadow_size: int | None = None,
    ) -> None:
        super().__init__(n_shadows, variance, seed, shadow_size)

    def _fit(self, shadow_trainer: ShadowTrainer, pairs: list[Pair]) -> None:
        self.trainer_ = shadow_trainer
        self.attacker_pairs_ = pairs
        self.threshold_ = 0.0  # replaced in infer, once shadows exist

    def _infer(self, target: QueryFn, pairs: list[Pair]) -> np.ndarray:
        own_from = {"per-pair": 2, "global": None}.get(self.variance, OWN_VARIANCE_FROM)
        pool = distinct(pairs + self.attacker_pairs_)
        size = self.shadow_size or len(pool) // 2
        candidate_rows = {pair: i for i, pair in enumerate(pairs)}
        requests, inside = [], np.zeros((self.n_shadows, len(pairs)), dtype=bool)
        for k in range(self.n_shadows):
            rng = np.random.default_rng([self.seed, k, 2])
            chosen = balanced_sample(pool, size, rng)
            requests.append((chosen, int(rng.integers(2**31 - 1))))
            rows = [candidate_rows[p] for p in chosen if p in candidate_rows]
            inside[k, rows] = True
        shadows = train_shadows(self.trainer_, requests)
        labels = pair_labels(pairs)
        phi = np.stack([logit_confidence(query(s, pairs, "a shadow"), labels) for s in shadows])
        self.threshold_ = self._threshold_from_shadows(phi, inside, own_from)
        phi_target = logit_confidence(query(target, pairs), labels)
        return likelihood_ratio(phi, inside, phi_target, own_from)

    def _threshold_from_shadows(
        self, phi: np.ndarray, inside: np.ndarray, own_from: int | None
    ) -> float:
        scores, truth = [], []
        for k in range(min(THRESHOLD_PSEUDO_TARGETS, self.n_shadows)):
            others = np.arange(self.n_shadows) != k
            scores.append(likelihood_ratio(phi[others], inside[others], phi[k], own_from))
            truth.append(inside[k])
        truth_all = np.concatenate(truth)
        if truth_all.all() or not truth_all.any():
            return 0.0
        return best_threshold(truth_all, np.concatenate(scores))
