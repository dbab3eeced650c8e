"""A label-only membership attack: it sees the target's decisions (same / not same), never its
probabilities.

What a label-only attacker can vary here is limited: the target is queried with pairs of
image files, so it cannot nudge an input towards the decision boundary the way ART's
`LabelOnlyDecisionBoundary` (HopSkipJump on the input) does, and making new perturbed image
files is out of scope. The attack therefore uses the two queries it can make from a candidate:
the pair as given and the pair with its images swapped (a system need not be symmetric; for a
symmetric one the second query adds nothing). Each candidate falls in a cell
(label, number of correct decisions: 0, 1 or 2), and its score is the member rate of that cell
among shadow pairs, with shadows trained on identity-disjoint halves of the attacker's pairs.

This is the gap attack ("member iff correct", `RuleBasedAttack`) calibrated per label and per
swap-consistency by shadows: it ranks correctly decided same-person pairs and different-person
pairs separately, since a system's errors (and their gap between members and non-members)
need not be the same for both kinds of pair. The
scores take at most six values, so its ROC is a few corners; that is what label-only access
gives here.
"""

from __future__ import annotations

import numpy as np

from facebone.attacks.base import QueryFn, ShadowTrainer, query
from facebone.attacks.membership.base import ShadowAttack, best_threshold, distinct, train_shadows
from facebone.attacks.registry import register_attack
from facebone.data.pairs import Pair, pair_labels


def _swapped(pairs: list[Pair]) -> list[Pair]:
    return [Pair(p.image2, p.image1, p.label) for p in pairs]


def _cells(fn: QueryFn, pairs: list[Pair], who: str) -> np.ndarray:
    """Cell index `3 * label + correct decisions` (0..5) of each pair, from decisions only."""
    labels = pair_labels(pairs)
    correct = np.zeros(len(pairs), dtype=np.int64)
    for asked in (pairs, _swapped(pairs)):
        decision = (query(fn, asked, who) >= 0.5).astype(np.int64)
        correct += decision == labels
    return 3 * labels + correct


@register_attack("label-only")
class LabelOnlyAttack(ShadowAttack):
    """Shadow-calibrated decision-only attack (see the module docstring).

    Parameters
    ----------
    n_shadows : shadow systems trained on identity-disjoint halves of the attacker's pairs.
    seed : seeds the splits and the shadows (the same seed gives the black-box attack's
        shadows, so a run trains them once).

    Fitted attributes: `cell_scores_` (score of each of the six cells), `threshold_` (best
    balanced accuracy on the shadow pairs).
    """

    name = "label-only"

    def __init__(self, n_shadows: int = 4, seed: int = 0, shadow_size: int | None = None) -> None:
        self.n_shadows = n_shadows
        self.seed = seed
        self.shadow_size = shadow_size

    def _fit(self, shadow_trainer: ShadowTrainer, pairs: list[Pair]) -> None:
        cells_in, cells_out = [], []
        splits = self._shadow_splits(pairs)
        shadows = train_shadows(shadow_trainer, [(s_in, seed) for s_in, _, seed in splits])
        for (shadow_in, shadow_out, _), shadow in zip(splits, shadows, strict=True):
            cells_in.append(_cells(shadow, distinct(shadow_in), "a shadow"))
            cells_out.append(_cells(shadow, shadow_out, "a shadow"))
        inside, outside = np.concatenate(cells_in), np.concatenate(cells_out)
        # Member rate of each cell under equal priors (the halves may differ in size), lightly
        # smoothed so that a cell no shadow pair fell in scores 0.5: no evidence either way.
        rate_in = np.bincount(inside, minlength=6) / len(inside)
        rate_out = np.bincount(outside, minlength=6) / len(outside)
        prior = 0.5 / (len(inside) + len(outside))
        self.cell_scores_ = (rate_in + prior) / (rate_in + rate_out + 2 * prior)
        truth = np.concatenate([np.ones(len(inside), bool), np.zeros(len(outside), bool)])
        self.threshold_ = best_threshold(
            truth, self.cell_scores_[np.concatenate([inside, outside])]
        )

    def _infer(self, target: QueryFn, pairs: list[Pair]) -> np.ndarray:
        return self.cell_scores_[_cells(target, pairs, "the target")]
