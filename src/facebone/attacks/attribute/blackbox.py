"""Attribute inference through the verification service alone: scores, no templates.

The attacker can only ask "same person?" of two photos and read P(same). It asks for the
target's photo against reference photos of its own people, whose attribute it knows, and lets
the `n_neighbors` references the service finds most alike vote: faces that share a gender (or
age, or skin tone) score a little higher against each other even between different people,
since embeddings cluster by such traits. With a cosine predictor this is exactly the
nearest-neighbour attack on the templates, done through the service; with the nn predictor the
neighbours are those of its learned similarity. Cost: one query per target photo and reference.

ART's `AttributeInferenceBlackBox` does not fit this target: it attacks a classifier trained on
tabular records, inferring one column of a training record from the record's other columns
and the model's prediction on it. Here the sensitive attribute is not a column of any input,
the model is a pairwise verifier (two photos in, one probability out) and the targets are
people outside its training data, so there is neither a record with a missing column nor a
per-record prediction to learn from. Querying against references of known attribute is what
the verifier's interface allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from facebone.attacks.attribute.base import check_labelled, nearest_vote
from facebone.attacks.base import (
    Attack,
    AttackError,
    AttackNotFittedError,
    QueryFn,
    check_positive_int,
    query,
)
from facebone.attacks.registry import register_attack
from facebone.data.pairs import Pair

# Photos asked at a time: a batch of pairs the system answers at once, small enough that the
# progress bar moves.
BATCH = 32


@register_attack("attribute-blackbox")
class BlackBoxAttributeAttack(Attack):
    """The class-balanced vote of the `n_neighbors` reference photos with the highest P(same).

    The references are the attacker's labelled photos: all of them, or `n_references` drawn
    with `seed` to bound the queries.
    """

    family: ClassVar[str] = "attribute"

    def __init__(
        self, n_neighbors: int = 15, n_references: int | None = None, seed: int = 0
    ) -> None:
        self.n_neighbors = n_neighbors
        self.n_references = n_references
        self.seed = seed

    def fit(
        self, images: Sequence[str], labels: Any, people: Sequence[str]
    ) -> BlackBoxAttributeAttack:
        """Keep the attacker's own photos (paths as the service takes them), their 0/1 labels
        and persons as references; nothing is asked yet. Returns self."""
        check_positive_int(self.n_neighbors, "n_neighbors")
        check_positive_int(self.seed, "seed", minimum=0)
        images = list(images)
        y = check_labelled(labels, people, len(images), "fit")
        rows = np.arange(len(images))
        if self.n_references is not None:
            check_positive_int(self.n_references, "n_references", minimum=2)
            if self.n_references < len(images):
                chosen = np.random.default_rng(self.seed).choice(
                    len(images), self.n_references, replace=False
                )
                rows = np.sort(chosen)
        check_labelled(y[rows], [people[i] for i in rows], len(rows), "fit, the references")
        self.references_ = [images[i] for i in rows]
        self.reference_labels_ = y[rows]
        return self

    def predict_proba(
        self, target: QueryFn, images: Sequence[str], progress: bool = False
    ) -> np.ndarray:
        """P(attribute = 1) for each photo, from one query per reference; `progress` shows a
        bar over the photos, asked `BATCH` at a time."""
        from tqdm import tqdm

        if not hasattr(self, "references_"):
            raise AttackNotFittedError("this attribute attack is not fitted yet; call fit first.")
        if not callable(target):
            raise AttackError("target must be a query function: pairs -> P(same) per pair.")
        images = list(images)
        if not images:
            raise AttackError("give at least one photo to attack.")
        scores = []
        with tqdm(total=len(images), desc="queries", unit="photo", disable=not progress) as bar:
            for start in range(0, len(images), BATCH):
                batch = images[start : start + BATCH]
                pairs = [Pair(image, ref, 0) for image in batch for ref in self.references_]
                scores.append(query(target, pairs).reshape(len(batch), len(self.references_)))
                bar.update(len(batch))
        return nearest_vote(np.concatenate(scores), self.reference_labels_, self.n_neighbors)

    def n_queries(self, n_images: int) -> int:
        """Queries `predict_proba` sends for `n_images` photos."""
        return n_images * len(self.references_)
