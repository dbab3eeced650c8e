"""Black-box views of real FR systems: the target to attack, and shadows trained like it."""

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from facebone.attacks.base import QueryFn, ShadowTrainer
from facebone.data.pairs import Pair
from facebone.embeddings.embedder import Embedder
from facebone.protection.attribute_suppression import AttributeSuppression
from facebone.system import FRSystem


def system_query_fn(system: FRSystem, root: str | Path) -> QueryFn:
    """Pairs of images under `root` in, the system's P(same) out."""

    def ask(pairs: Sequence[Pair]) -> np.ndarray:
        return system.predict_proba(root, pairs)

    return ask


class SystemShadowTrainer:
    """Shadow systems with the target's options (`FRSystem.get_params()`), seeded per shadow
    and trained many at a time (`FRSystem.fit_many`).

    The attacker knows how the target was trained (backbones, predictor, mitigation) but not
    its seed or its training pairs. A target with attribute suppression hands its
    `suppressions` over (they are fitted on public faces, so the attacker knows them). A
    shadow's per-query draws are seeded by its own seed, so a run is reproducible.
    """

    def __init__(
        self,
        params: dict,
        embedder: Embedder,
        root: str | Path,
        suppressions: Mapping[str, AttributeSuppression] | None = None,
    ) -> None:
        self.params = params
        self.embedder = embedder
        self.root = root
        self.suppressions = suppressions

    def __call__(self, pairs: Sequence[Pair], seed: int) -> QueryFn:
        return self.train_many([(pairs, seed)])[0]

    def train_many(self, requests: Sequence[tuple[Sequence[Pair], int]]) -> list[QueryFn]:
        systems = [FRSystem(**{**self.params, "seed": seed}) for _, seed in requests]
        pair_sets = [pairs for pairs, _ in requests]
        FRSystem.fit_many(
            systems, self.embedder, self.root, pair_sets, suppressions=self.suppressions
        )
        for system, (_, seed) in zip(systems, requests, strict=True):
            system.reset_query_stream(seed)
        return [system_query_fn(system, self.root) for system in systems]


def system_shadow_trainer(
    params: dict,
    embedder: Embedder,
    root: str | Path,
    suppressions: Mapping[str, AttributeSuppression] | None = None,
) -> ShadowTrainer:
    """`SystemShadowTrainer(params, embedder, root, suppressions)`."""
    return SystemShadowTrainer(params, embedder, root, suppressions)
