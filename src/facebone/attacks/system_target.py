"""Black-box views of real FR systems: the target to attack, and shadows trained like it."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facebone.attacks.base import QueryFn, ShadowTrainer
from facebone.data.pairs import Pair
from facebone.embeddings.embedder import Embedder
from facebone.system import FRSystem


def system_query_fn(system: FRSystem, root: str | Path) -> QueryFn:
    """Pairs of images under `root` in, the system's P(same) out."""

    def ask(pairs: Sequence[Pair]) -> np.ndarray:
        return system.predict_proba(root, pairs)

    return ask


def system_shadow_trainer(params: dict, embedder: Embedder, root: str | Path) -> ShadowTrainer:
    """Shadow systems with the target's options (`FRSystem.get_params()`), seeded per shadow.

    The attacker knows how the target was trained (backbones, predictor, mitigation) but not
    its seed or its training pairs.
    """

    def train(pairs: Sequence[Pair], seed: int) -> QueryFn:
        shadow = FRSystem(**{**params, "seed": seed}).fit(embedder, root, pairs)
        return system_query_fn(shadow, root)

    return train
