"""Verification metrics: accuracy at the system's threshold, ROC AUC, TAR at fixed FAR."""

import numpy as np
from sklearn.metrics import (
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

FARS = (1e-2, 1e-3)


def tar_at_far(
    labels: np.ndarray, scores: np.ndarray, far: float, sample_weight: np.ndarray | None = None
) -> float:
    """Share of genuine pairs accepted at the strictest threshold whose false-accept rate on
    impostor pairs is at most `far` (0 when no threshold reaches it)."""
    fpr, tpr, _ = roc_curve(labels, scores, sample_weight=sample_weight)
    allowed = fpr <= far
    return float(tpr[allowed].max()) if allowed.any() else 0.0


def verification_metrics(
    labels: np.ndarray,
    probabilities: np.ndarray,
    threshold: float = 0.5,
    weights: np.ndarray | None = None,
) -> dict:
    """Accuracy, precision, recall, F1, ROC AUC, TAR at each FAR and the confusion matrix of
    the answers `probabilities` to pairs with 0/1 `labels`.

    `probabilities` may hold every answer a system may give, shape (K, N), row k given with
    probability `weights[k]` (`FRSystem.answer_distribution`: the backbone a query draws).
    Each answer then counts with its probability: accuracy, recall and AUC are exactly their
    expectation over the draws (each is a sum over pairs, or over pairs of pairs, drawn
    independently), precision, F1 and TAR at FAR those of the expected counts, and the
    confusion matrix holds expected counts.
    """
    labels = np.asarray(labels, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    sample_weight = None
    if probabilities.ndim == 2 and len(probabilities) == 1:
        probabilities = probabilities[0]
    elif probabilities.ndim == 2:
        sample_weight = np.repeat(np.asarray(weights, dtype=float), probabilities.shape[1])
        labels = np.tile(labels, len(probabilities))
        probabilities = probabilities.reshape(-1)
    decisions = (probabilities >= threshold).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, decisions, average="binary", zero_division=0, sample_weight=sample_weight
    )
    both_classes = len(np.unique(labels)) == 2
    matrix = confusion_matrix(labels, decisions, labels=[0, 1], sample_weight=sample_weight)
    return {
        "accuracy": float(np.average(decisions == labels, weights=sample_weight)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "auc": (
            float(roc_auc_score(labels, probabilities, sample_weight=sample_weight))
            if both_classes
            else float("nan")
        ),
        "tar_at_far": {
            str(far): (
                tar_at_far(labels, probabilities, far, sample_weight)
                if both_classes
                else float("nan")
            )
            for far in FARS
        },
        "confusion_matrix": matrix.tolist(),
        "threshold": threshold,
    }
