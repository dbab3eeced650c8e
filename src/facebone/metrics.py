"""Verification metrics: accuracy at the system's threshold, ROC AUC, TAR at fixed FAR."""

import numpy as np
from sklearn.metrics import (
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

FARS = (1e-2, 1e-3)


def tar_at_far(labels: np.ndarray, scores: np.ndarray, far: float) -> float:
    """Share of genuine pairs accepted at the strictest threshold whose false-accept rate on
    impostor pairs is at most `far` (0 when no threshold reaches it)."""
    fpr, tpr, _ = roc_curve(labels, scores)
    allowed = fpr <= far
    return float(tpr[allowed].max()) if allowed.any() else 0.0


def verification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5
) -> dict:
    labels = np.asarray(labels, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    decisions = (probabilities >= threshold).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, decisions, average="binary", zero_division=0
    )
    both_classes = len(np.unique(labels)) == 2
    return {
        "accuracy": float((decisions == labels).mean()),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "auc": float(roc_auc_score(labels, probabilities)) if both_classes else float("nan"),
        "tar_at_far": {
            str(far): tar_at_far(labels, probabilities, far) if both_classes else float("nan")
            for far in FARS
        },
        "confusion_matrix": confusion_matrix(labels, decisions, labels=[0, 1]).tolist(),
        "threshold": threshold,
    }
