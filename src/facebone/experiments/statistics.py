"""Figures over seeds: mean and standard deviation, and the chance band beside them.

An attack that knows nothing still scores above 0.5 AUC on one split, and the strongest of
many such attacks scores higher. The chance band is what the strongest of `n_tests` attack
evaluations reaches with probability 1 - alpha when membership is random, for the same
numbers of members and non-members and averaged over the same number of seeds: figures
inside it cannot be told from no leak at all. It is simulated (random scores), not
approximated, so TPR at low FPR with ~100 non-members, where one person moves the figure
by 1%, is exact.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from facebone.attacks.membership.base import LOW_FPRS

CHANCE_ALPHA = 0.05
CHANCE_DRAWS = 4000


def mean_sd(values: Sequence[float]) -> dict[str, float]:
    """`{"mean", "sd", "n"}` (sample sd; 0 for one value)."""
    array = np.asarray(values, dtype=np.float64)
    sd = float(array.std(ddof=1)) if len(array) > 1 else 0.0
    return {"mean": float(array.mean()), "sd": sd, "n": len(array)}


def _null_figures(n_in: int, n_out: int, rng: np.random.Generator) -> np.ndarray:
    """AUC and TPR at each low FPR of CHANCE_DRAWS random scorings, shape (draws, 1 + fprs)."""
    scores_in = rng.random((CHANCE_DRAWS, n_in))
    scores_out = np.sort(rng.random((CHANCE_DRAWS, n_out)), axis=1)
    below = np.stack(
        [np.searchsorted(row, s) for row, s in zip(scores_out, scores_in, strict=True)]
    )
    auc = below.mean(axis=1) / n_out
    figures = [auc]
    for fpr in LOW_FPRS:
        allowed = int(np.floor(fpr * n_out + 1e-12))
        # The cut just above the (allowed+1)-th highest non-member score.
        cut = scores_out[:, n_out - allowed - 1]
        figures.append((scores_in > cut[:, None]).mean(axis=1))
    return np.stack(figures, axis=1)


@functools.cache
def chance_band(
    n_members: int, n_nonmembers: int, n_seeds: int, n_tests: int, alpha: float = CHANCE_ALPHA
) -> dict[str, Any]:
    """What the strongest of `n_tests` chance attacks reaches, averaged over `n_seeds`
    splits, with probability 1 - alpha (Bonferroni over tests: conservative for correlated
    attacks). `{"auc": float, "tpr_at_fpr": {"0.01": float, "0.001": float}}`."""
    rng = np.random.default_rng([n_members, n_nonmembers, n_seeds])
    draws = np.mean([_null_figures(n_members, n_nonmembers, rng) for _ in range(n_seeds)], axis=0)
    quantile = np.quantile(draws, 1.0 - alpha / max(n_tests, 1), axis=0)
    return {
        "auc": float(quantile[0]),
        "tpr_at_fpr": {str(fpr): float(q) for fpr, q in zip(LOW_FPRS, quantile[1:], strict=True)},
    }
