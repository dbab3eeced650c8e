"""What the attribute-inference attacks share: person weights, the nearest-neighbour vote, and
the evaluation against the prior.

Attacks learn on the attacker's own people and are scored on target people they never saw.
Every image is one guess, but each person counts once (weight 1 / their number of images):
LFW has 62 photos of George W. Bush, and an attack scored per image would mostly be scored on
him.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from facebone.attacks.base import AttackError


def person_weights(people: Sequence[str]) -> np.ndarray:
    """1 / (number of images of the person) for each image: each person weighs 1 in all."""
    counts = Counter(people)
    return np.array([1.0 / counts[person] for person in people], dtype=np.float64)


def check_labelled(labels: Any, people: Sequence[str], n: int, what: str) -> np.ndarray:
    """`labels` as int64 in {0, 1}, one per row and with a person for each; training needs
    both classes."""
    labels = np.asarray(labels)
    if labels.shape != (n,) or len(people) != n:
        raise AttackError(f"{what}: give one label and one person per row ({n} rows).")
    if not np.all((labels == 0) | (labels == 1)):
        raise AttackError(f"{what}: labels must be 0 or 1.")
    if len(np.unique(labels)) < 2:
        raise AttackError(f"{what}: the attacker's people must include both classes.")
    return labels.astype(np.int64)


def nearest_vote(similarity: np.ndarray, reference_labels: np.ndarray, k: int) -> np.ndarray:
    """P(label 1) of each row from its `k` most similar references (columns of `similarity`),
    class-balanced: each vote is divided by its class's share among the references, so that
    the 0.5 cut does not favour the majority class (78% of the kept LFW people are men) and a
    row scores 0.5 when its neighbours are as mixed as the references."""
    k = min(k, similarity.shape[1])
    nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    share = reference_labels.mean()
    votes = reference_labels[nearest].mean(axis=1)
    positive, negative = votes / share, (1.0 - votes) / (1.0 - share)
    return positive / (positive + negative)


def prior_class(labels: np.ndarray, people: Sequence[str]) -> int:
    """The majority class among the attacker's people: the guess that needs no attack."""
    weights = person_weights(people)
    return int(weights[labels == 1].sum() > weights[labels == 0].sum())


def evaluate_attribute(
    labels: Any, scores: Any, people: Sequence[str], prior: int
) -> dict[str, Any]:
    """Balanced accuracy (at score >= 0.5), ROC AUC and plain accuracy of attribute scores
    (P(label 1)) on target people, each person weighted once, next to the prior baseline:
    always guessing `prior` scores balanced accuracy and AUC 0.5, and its plain accuracy is
    the share of that class among the targets."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or len(people) != len(labels):
        raise AttackError("give one label, one score and one person per target image.")
    if len(np.unique(labels)) < 2:
        raise AttackError("the target people must include both classes to score an attack.")
    weights = person_weights(people)
    guesses = (scores >= 0.5).astype(np.int64)
    return {
        "balanced_accuracy": float(balanced_accuracy_score(labels, guesses, sample_weight=weights)),
        "auc": float(roc_auc_score(labels, scores, sample_weight=weights)),
        "accuracy": float(accuracy_score(labels, guesses, sample_weight=weights)),
        "baseline": {
            "class": prior,
            "balanced_accuracy": 0.5,
            "auc": 0.5,
            "accuracy": float(weights[labels == prior].sum() / weights.sum()),
        },
        "n_images": len(labels),
        "n_people": len(set(people)),
        "n_people_positive": len({p for p, y in zip(people, labels, strict=True) if y == 1}),
    }
