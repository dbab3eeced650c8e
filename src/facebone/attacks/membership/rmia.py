"""RMIA, the relative membership inference attack of Zarifzadeh, Liu, Shokri and Stock (ICML
2024, "Low-Cost High-Power Membership Inference Attacks").

A candidate pair x is tested against population pairs z that are known non-members of the
target (the attacker's own pairs). With Pr(x|theta) the target's probability of x's true
label and Pr(x) its average over reference models (the shadows), the pairwise likelihood ratio

    LR(x, z) = [Pr(x|theta) / Pr(x)] / [Pr(z|theta) / Pr(z)]

says how much more the target favours x than a typical model does, relative to how much it
favours z. The score of x is the fraction of population pairs it dominates by a factor gamma,
#{z : LR(x, z) > gamma} / #z. With one population for all candidates the count grows with
x's own ratio Pr(x|theta) / Pr(x): the candidates rank as that ratio does, and the population
turns it into a score with a meaning (the share of known non-members x outranks), so a cut
holds across targets that are more or less confident overall.

Pr(x) is the mean of x's IN and OUT shadows' probabilities, as if half of the reference
models had trained on x. Where x has no IN shadow (few shadows, or the offline setting where
no shadow trained on any candidate), the paper's linear approximation stands in for the IN
mean: Pr_IN(x) ~ a Pr_OUT(x) + (1 - a), so Pr(x) = ((1 + a) Pr_OUT(x) + 1 - a) / 2. The
paper tunes `a` on reference models; here (`a=None`) it is fitted on the table's pairs that
have both IN and OUT shadows (least squares of the line through (1, 1)).
"""

from __future__ import annotations

import numpy as np

from facebone.attacks.base import AttackError
from facebone.attacks.membership.signals import PairSignals, SignalAttack, SignalTable
from facebone.attacks.registry import register_attack

# ML Privacy Meter's choice. A confident verifier gives most pairs a probability near 1, so
# Pr(x|theta) / Pr(x) stays near 1 and a factor of 2 (the paper's online choice) is rarely
# reached: with gamma = 2 almost every candidate beats no population pair.
DEFAULT_GAMMA = 1.0


def _side_means(signals: PairSignals) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per pair: mean P(true label) over IN shadows, over OUT shadows, and their counts."""
    inside, p = signals.inside, signals.shadow_p
    count_in, count_out = inside.sum(axis=1), (~inside).sum(axis=1)
    mean_in = np.where(inside, p, 0.0).sum(axis=1) / np.maximum(count_in, 1)
    mean_out = np.where(inside, 0.0, p).sum(axis=1) / np.maximum(count_out, 1)
    return mean_in, mean_out, count_in, count_out


def fitted_a(table: SignalTable) -> float | None:
    """The slope `a` of Pr_IN = a Pr_OUT + (1 - a), fitted on every pair of the table (the
    candidates and any population) with both IN and OUT shadows, clipped to [0, 1]; None
    where no pair has both."""
    measured = [table.candidates] + ([] if table.population is None else [table.population])
    mean_in, mean_out, count_in, count_out = (
        np.concatenate(parts) for parts in zip(*map(_side_means, measured), strict=True)
    )
    both = (count_in > 0) & (count_out > 0)
    gap_out = 1.0 - mean_out[both]
    if not np.any(gap_out > 0):
        return None
    slope = float(np.sum((1.0 - mean_in[both]) * gap_out) / np.sum(gap_out**2))
    return min(max(slope, 0.0), 1.0)


def _marginal(signals: PairSignals, a: float | None, offline: bool) -> np.ndarray:
    """Pr(x) per pair: (Pr_IN + Pr_OUT) / 2 over the shadows, with Pr_IN ~ a Pr_OUT + 1 - a
    where a pair has no IN shadow (or `offline`); a pair with no OUT shadow lets its IN mean
    stand for both."""
    mean_in, mean_out, count_in, count_out = _side_means(signals)
    p_out = np.where(count_out > 0, mean_out, mean_in)
    use_in = (count_in > 0) & (not offline)
    if not use_in.all() and a is None:
        raise AttackError(
            "RMIA needs the coefficient a where pairs have no IN shadow, and this table has "
            "no pair with both IN and OUT shadows to fit it from; give a in [0, 1]."
        )
    p_in = np.where(use_in, mean_in, 0.0 if a is None else a * p_out + 1.0 - a)
    return 0.5 * (p_in + p_out)


def check_rmia_options(gamma: object, a: object) -> None:
    """`gamma` > 0 and `a` in [0, 1] or None, or an AttackError."""
    if isinstance(gamma, bool) or not isinstance(gamma, int | float) or not gamma > 0:
        raise AttackError(f"gamma must be a number > 0, got {gamma!r}.")
    if a is not None and (isinstance(a, bool) or not isinstance(a, int | float) or not 0 <= a <= 1):
        raise AttackError(f"a must be a number in [0, 1] or None, got {a!r}.")


def rmia_scores(
    table: SignalTable, gamma: float = DEFAULT_GAMMA, a: float | None = None, offline: bool = False
) -> np.ndarray:
    """RMIA on a signal table: for each candidate, the fraction of population pairs whose
    likelihood ratio it exceeds by a factor `gamma`, ties broken by its own ratio.

    `a` (in [0, 1]; None: `fitted_a(table)`) approximates the IN shadows' mean where a pair has
    none; `offline` ignores IN shadows altogether, the paper's offline attack.

    The fraction takes only #population + 1 values: with a few hundred population pairs many
    candidates tie (at 1.0 above all), and no cut reaches an FPR below about 1 / #population.
    The count is monotone in the candidate's own ratio, so breaking ties by that ratio gives
    the ranking of a larger population; the score is (count + t) / (#population + 1) with
    t in (0, 1) increasing in the ratio, within 1 / (#population + 1) of the fraction.
    """
    check_rmia_options(gamma, a)
    if table.population is None:
        raise AttackError("RMIA compares candidates with population pairs; this table has none.")
    coefficient = fitted_a(table) if a is None else float(a)

    def log_ratio(signals: PairSignals) -> np.ndarray:
        return np.log(signals.target_p) - np.log(_marginal(signals, coefficient, offline))

    population = np.sort(log_ratio(table.population))
    # LR(x, z) > gamma  <=>  log ratio of z < log ratio of x - log(gamma): a sorted count.
    margin = log_ratio(table.candidates) - np.log(gamma)
    beaten = np.searchsorted(population, margin, "left")
    tie_break = 0.5 + np.arctan(margin) / np.pi
    return (beaten + tie_break) / (len(population) + 1)


@register_attack("rmia")
class RMIAAttack(SignalAttack):
    """RMIA with IN and OUT shadows (the online attack) on the signal table it shares with
    online LiRA.

    Parameters
    ----------
    n_shadows : shadow systems, trained on draws from the candidates and the attacker's
        pairs (>= 4).
    gamma : a candidate beats a population pair when its likelihood ratio is `gamma` times
        larger (> 0; 1 as in ML Privacy Meter). With ties broken (`rmia_scores`) it moves
        the scores, not their order.
    a : Pr_IN ~ a Pr_OUT + (1 - a) for pairs without IN shadows (None: fitted on the pairs
        with both).
    seed : seeds the draws and shadow training.
    shadow_size : pairs each shadow trains on (the target's training-set size; None: half
        of the candidates and attacker pairs together).

    The population is the attacker's pairs, asked of the target as well.
    """

    name = "rmia"

    def __init__(
        self,
        n_shadows: int = 64,
        gamma: float = DEFAULT_GAMMA,
        a: float | None = None,
        seed: int = 0,
        shadow_size: int | None = None,
    ) -> None:
        self.n_shadows = n_shadows
        self.gamma = gamma
        self.a = a
        self.seed = seed
        self.shadow_size = shadow_size

    def _check_params(self) -> None:
        super()._check_params()
        check_rmia_options(self.gamma, self.a)

    def _scores(self, table: SignalTable) -> np.ndarray:
        return rmia_scores(table, self.gamma, self.a)
