"""Training regimes: how much data and how long the target (and its shadows) train.

- `default`: every target_train pair, the nn predictor's default options (60 epochs, weight
  decay 1e-4): what a defender would deploy.
- `leaking`: a seeded, label-balanced subset of 100 target_train pairs, 300 epochs, no weight
  decay: the over-fitted system where membership inference is known to work.

A regime's nn options apply to every nn-based defense. Members are exactly the pairs the
target trained on. Shadows are trained like the target (same defense, same regime) on halves
of an attacker subset twice the target's training-set size, so each shadow trains on about as
many pairs as the target; when the attacker owns fewer pairs than that, it uses all of them.

Each is registered in `REGIMES` (facebone/registry.py) and built with `create_regime(name)`; a
new regime is a function decorated `@register_regime("name")` that returns its `Regime`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facebone.data.pairs import Pair
from facebone.errors import FaceBoneError
from facebone.registry import Registry


def balanced_subset(pairs: Sequence[Pair], n: int | None, rng: np.random.Generator) -> list[Pair]:
    """`n` pairs, half same-person and half different-person, drawn at random (all if None
    or if `n` covers them); the pairs keep their original order."""
    pairs = list(pairs)
    if n is None or n >= len(pairs):
        return pairs
    if n < 2:
        raise FaceBoneError(f"a training set needs at least 2 pairs, got {n}")
    positives = [i for i, p in enumerate(pairs) if p.label == 1]
    negatives = [i for i, p in enumerate(pairs) if p.label == 0]
    n_pos = min(n // 2, len(positives))
    n_neg = min(n - n_pos, len(negatives))
    n_pos = min(n - n_neg, len(positives))
    chosen = np.concatenate(
        [
            rng.choice(positives, n_pos, replace=False),
            rng.choice(negatives, n_neg, replace=False),
        ]
    ).astype(int)
    return [pairs[i] for i in sorted(chosen)]


@dataclass(frozen=True)
class Regime:
    """Training-set size (`None`: all target_train pairs) and nn options."""

    name: str
    description: str
    n_train: int | None = None
    nn_params: dict[str, Any] = field(default_factory=dict)

    def training_pairs(self, target_train: Sequence[Pair], seed: int) -> list[Pair]:
        """The target's training pairs, which are also the attack's members."""
        return balanced_subset(target_train, self.n_train, np.random.default_rng([seed, 101]))

    def attacker_pairs(self, attacker: Sequence[Pair], n_train: int, seed: int) -> list[Pair]:
        """The attacker's pairs for shadows: twice the target's training-set size, so a shadow
        trained on half of them sees about as many pairs as the target did."""
        return balanced_subset(attacker, 2 * n_train, np.random.default_rng([seed, 102]))


REGIMES: Registry[Regime] = Registry("regime")
register_regime = REGIMES.register
list_regimes = REGIMES.list
create_regime = REGIMES.create
get_regime = create_regime  # the name most callers know


@register_regime("default")
def _default() -> Regime:
    return Regime("default", "all target_train pairs, default nn options (60 epochs)")


@register_regime("leaking")
def _leaking() -> Regime:
    return Regime(
        "leaking",
        "100 target_train pairs (balanced, seeded), 300 epochs, no weight decay",
        n_train=100,
        nn_params={"epochs": 300, "weight_decay": 0.0},
    )
