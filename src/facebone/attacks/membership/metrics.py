"""How well membership scores separate members from non-members: AUC, balanced accuracy,
advantage, TPR at low FPR (Carlini et al.'s recommendation) and a compact ROC curve.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from facebone.attacks.base import AttackError
from facebone.attacks.membership.base import LOW_FPRS

MAX_ROC_POINTS = 200


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """The best TPR any threshold reaches without its FPR exceeding `target`.

    No interpolation past the last ROC point at or below `target`: with few non-members an
    attack cannot claim a TPR at an FPR it never measured.
    """
    allowed = fpr <= target + 1e-12
    return float(tpr[allowed].max()) if allowed.any() else 0.0


def downsample_roc(fpr: np.ndarray, tpr: np.ndarray, max_points: int = MAX_ROC_POINTS):
    """At most `max_points` ROC points, dense at low FPR (log grid) and spread over the rest.

    For each grid FPR the last point at or below it and the next one are kept, so every kept
    step of the curve keeps its corner.
    """
    if len(fpr) <= max_points:
        return fpr, tpr
    smallest = fpr[fpr > 0].min() if np.any(fpr > 0) else 1.0
    grid = np.concatenate(
        [
            np.geomspace(smallest, 1.0, (max_points - 4) // 3),
            np.linspace(0.0, 1.0, (max_points - 4) // 6),
        ]
    )
    last = np.searchsorted(fpr, grid, side="right") - 1
    keep = np.unique(np.concatenate([[0, len(fpr) - 1], last, np.minimum(last + 1, len(fpr) - 1)]))
    return fpr[keep], tpr[keep]


def evaluate_scores(is_member: Any, scores: Any, threshold: float | None = None) -> dict[str, Any]:
    """Metrics of membership scores (higher = more likely a member), JSON-serialisable.

    `threshold` is the attack's own cut (member iff score >= threshold), chosen on shadow
    data; balanced accuracy is measured there and "balanced_accuracy_threshold" says
    "shadow". Without it the best threshold on these very scores is used, which flatters the
    attack, and the key says "oracle". "advantage" is max(TPR - FPR) over all thresholds.
    """
    truth = np.asarray(is_member)
    values = np.asarray(scores, dtype=np.float64)
    if truth.ndim != 1 or values.shape != truth.shape:
        raise AttackError(
            f"is_member and scores must be 1-D and equally long, got {truth.shape} and "
            f"{values.shape}."
        )
    if not np.all((truth == 0) | (truth == 1)):
        raise AttackError("is_member must hold 1 (member) or 0 (non-member) only.")
    truth = truth.astype(bool)
    n_in, n_out = int(truth.sum()), int((~truth).sum())
    if n_in == 0 or n_out == 0:
        raise AttackError(
            f"evaluation needs members and non-members, got {n_in} members and {n_out} non-members."
        )
    if not np.all(np.isfinite(values)):
        raise AttackError("scores contain NaN or infinite values.")
    fpr, tpr, _ = roc_curve(truth, values, drop_intermediate=False)
    advantage = float(np.max(tpr - fpr))
    if threshold is None:
        balanced, how = 0.5 * (1.0 + advantage), "oracle"
    else:
        decided = values >= threshold
        balanced = 0.5 * (decided[truth].mean() + (~decided[~truth]).mean())
        how = "shadow"
    roc_fpr, roc_tpr = downsample_roc(fpr, tpr)
    return {
        "auc": float(roc_auc_score(truth, values)),
        "balanced_accuracy": float(balanced),
        "balanced_accuracy_threshold": how,
        "threshold": None if threshold is None else float(threshold),
        "advantage": advantage,
        "tpr_at_fpr": {str(t): tpr_at_fpr(fpr, tpr, t) for t in LOW_FPRS},
        "roc": {"fpr": [float(v) for v in roc_fpr], "tpr": [float(v) for v in roc_tpr]},
        "n_members": n_in,
        "n_nonmembers": n_out,
    }
