"""Targets and shadow trainers built from precomputed embeddings and a predictor.

Experiments and tests that already hold `{image path: embedding}` (from `embed_images` and its
cache) can attack a predictor without the full face pipeline:

    target = embedding_query_fn(create_predictor("nn").fit(e1, e2, y), embeddings)
    shadows = embedding_shadow_trainer(embeddings, lambda seed: create_predictor("nn", seed=seed))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from facebone.attacks.base import AttackError, QueryFn, ShadowTrainer
from facebone.data.pairs import Pair, pair_labels
from facebone.predictors import Predictor


def embed_pairs(
    embeddings: Mapping[str, np.ndarray], pairs: Sequence[Pair]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(e1, e2, y)` arrays of `pairs`; an image without an embedding is an AttackError."""
    missing = [p for pair in pairs for p in (pair.image1, pair.image2) if p not in embeddings]
    if missing:
        raise AttackError(
            f"{len(missing)} pair images have no embedding, for example {missing[0]!r}."
        )
    e1 = np.stack([embeddings[pair.image1] for pair in pairs])
    e2 = np.stack([embeddings[pair.image2] for pair in pairs])
    return e1, e2, pair_labels(pairs)


def embedding_query_fn(predictor: Predictor, embeddings: Mapping[str, np.ndarray]) -> QueryFn:
    """The black-box view of a fitted predictor: pairs in, P(same) out."""

    def ask(pairs: Sequence[Pair]) -> np.ndarray:
        e1, e2, _ = embed_pairs(embeddings, pairs)
        return predictor.predict_proba(e1, e2)

    return ask


class EmbeddingShadowTrainer:
    """Shadow training the way the target was trained: `make_predictor(seed)` gives a fresh,
    unfitted predictor configured like the target's; many are fitted at once where the
    predictor can (`Predictor.fit_many`)."""

    def __init__(
        self, embeddings: Mapping[str, np.ndarray], make_predictor: Callable[[int], Predictor]
    ) -> None:
        self.embeddings = embeddings
        self.make_predictor = make_predictor

    def __call__(self, pairs: Sequence[Pair], seed: int) -> QueryFn:
        return self.train_many([(pairs, seed)])[0]

    def train_many(self, requests: Sequence[tuple[Sequence[Pair], int]]) -> list[QueryFn]:
        predictors = [self.make_predictor(seed) for _, seed in requests]
        datasets = [embed_pairs(self.embeddings, pairs) for pairs, _ in requests]
        fitted = type(predictors[0]).fit_many(predictors, datasets)
        return [embedding_query_fn(p, self.embeddings) for p in fitted]


def embedding_shadow_trainer(
    embeddings: Mapping[str, np.ndarray], make_predictor: Callable[[int], Predictor]
) -> ShadowTrainer:
    """`EmbeddingShadowTrainer(embeddings, make_predictor)`."""
    return EmbeddingShadowTrainer(embeddings, make_predictor)
