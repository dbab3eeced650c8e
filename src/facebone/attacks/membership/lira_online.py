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

The shadows and their answers are a signal table (`signals.py`), shared with RMIA and any
other attack of the run that asks for the same shadows; the score is `lira_online_scores`.
"""

from __future__ import annotations

import numpy as np

from facebone.attacks.membership.lira import MIN_STD, check_variance
from facebone.attacks.membership.signals import SignalAttack, SignalTable
from facebone.attacks.registry import register_attack

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


def lira_online_scores(table: SignalTable, variance: str = "auto") -> np.ndarray:
    """Online LiRA on a signal table: the log-likelihood ratio of each candidate's target phi
    under its IN and OUT Gaussians (`variance`: "per-pair", "global", or "auto", a
    candidate's own variance on a side with `OWN_VARIANCE_FROM` shadows or more)."""
    signals = table.candidates
    check_variance(variance, signals.n_shadows)
    own_from = {"per-pair": 2, "global": None}.get(variance, OWN_VARIANCE_FROM)
    return likelihood_ratio(signals.shadow_phi.T, signals.inside.T, signals.target_phi, own_from)


@register_attack("lira-online")
class OnlineLiRAAttack(SignalAttack):
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

    Shadows are trained in `infer`, once the candidates are known (`SignalAttack`); `fit`
    only keeps the attacker's pairs and the trainer. `threshold_` is chosen there too, on
    shadow data only: each of a few shadows plays the target, scored against the others.
    """

    name = "lira-online"

    def __init__(
        self,
        n_shadows: int = 64,
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

    def _scores(self, table: SignalTable) -> np.ndarray:
        return lira_online_scores(table, self.variance)
