"""Tune DP-SGD for utility before judging it, so that the baseline to beat is a good one.

Aerni, Zhang and Tramer (CCS 2024) found defenses compared against badly tuned DP-SGD look
better than they are. For each budget the clipping norm and the number of epochs are chosen
by validation accuracy on the attacker's own pairs (identity-disjoint halves: train on one,
validate on the other), never on the target's data; the privacy budget (epsilon, delta) is
fixed, so the tuning itself spends none of the members' privacy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facebone.attacks.membership.base import split_by_identity
from facebone.data.pairs import Pair, pair_labels
from facebone.embeddings.embedder import Embedder
from facebone.metrics import verification_metrics
from facebone.system import FRSystem

CLIP_NORMS = (0.5, 1.0, 4.0)
# Fractions of the regime's epochs: with a fixed budget, fewer epochs mean less noise per step.
EPOCH_FRACTIONS = (0.25, 1.0)


def tune_dp(
    params: dict[str, Any],
    embedder: Embedder,
    root: str | Path,
    attacker: Sequence[Pair],
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`(params, tuning)`: `params` (FRSystem options with a `dp_epsilon` predictor option)
    with the clipping norm and epochs of the best validation accuracy, and what was tried.
    Trials train through the batched DP-SGD of `FRSystem.fit_many`, the same algorithm."""
    train, valid = split_by_identity(list(attacker), np.random.default_rng([seed, 103]))
    predictor = params["predictor_params"]
    epochs = predictor.get("epochs", 60)
    trials = []
    for clip in CLIP_NORMS:
        for fraction in EPOCH_FRACTIONS:
            options = {
                **predictor,
                "max_grad_norm": clip,
                "epochs": max(1, round(epochs * fraction)),
            }
            system = FRSystem(**{**params, "predictor_params": options})
            FRSystem.fit_many([system], embedder, root, [train])
            accuracy = verification_metrics(pair_labels(valid), system.predict_proba(root, valid))[
                "accuracy"
            ]
            trials.append((accuracy, -options["epochs"], -clip, options))
    best = max(trials, key=lambda t: t[:3])
    return {**params, "predictor_params": best[3]}, {
        "validation_accuracy": best[0],
        "max_grad_norm": best[3]["max_grad_norm"],
        "epochs": best[3]["epochs"],
        "grid": {"max_grad_norm": list(CLIP_NORMS), "epoch_fractions": list(EPOCH_FRACTIONS)},
    }
