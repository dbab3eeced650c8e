"""Train one target, measure its utility, attack it: the work of one (regime, defense, seed).

`train_target` trains and measures; `attack_target` runs membership attacks against the
trained target with its members and non-members. The study engine
(`facebone.studies.engine`) calls the two for each target, running attacks with options of
their own against one trained target.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facebone.attacks.runner import LEVELS, evaluate_membership_attacks
from facebone.attacks.system_target import system_query_fn, system_shadow_trainer
from facebone.data.pairs import Pair, pair_labels
from facebone.embeddings.embedder import Embedder
from facebone.experiments.dp_tuning import tune_dp
from facebone.metrics import verification_metrics
from facebone.system import FRSystem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainedTarget:
    """A target trained on its members, with its utility on target_test."""

    system: FRSystem
    params: dict[str, Any]  # as trained: a DP target's tuned options included
    utility: dict[str, Any]  # `verification_metrics` on target_test
    train_accuracy: float
    privacy: dict[str, Any]  # "dp", "epsilon", "delta", "noise_multiplier", "tuning"
    train_s: float


def train_target(
    params: dict[str, Any],
    embedder: Embedder,
    root: str | Path,
    training: Sequence[Pair],
    test: Sequence[Pair],
    attacker: Sequence[Pair],
    seed: int,
) -> TrainedTarget:
    """Train `FRSystem(**params)` on `training` and measure its utility on `test`.

    A DP-SGD target has its clipping norm and epochs tuned first, on the attacker's pairs
    only (`dp_tuning.tune_dp`); shadows are trained with the tuned options too. The
    attacker's pairs also stand for the public faces an attribute suppression is fitted on
    (the worst case: the attacker knows the projection exactly).
    """
    started = time.perf_counter()
    tuning = None
    if params["predictor_params"].get("dp_epsilon") is not None:
        params, tuning = tune_dp(params, embedder, root, attacker, seed)
    system = FRSystem(**params).fit(embedder, root, training, public=attacker)
    system.reset_query_stream(seed)  # utility from seeded draws too, so runs repeat
    train_s = time.perf_counter() - started
    utility = verification_metrics(pair_labels(test), system.predict_proba(root, test))
    train_accuracy = verification_metrics(
        pair_labels(training), system.predict_proba(root, training)
    )["accuracy"]
    predictor = system.predictor_
    epsilon = getattr(predictor, "epsilon_", None)
    privacy = {
        "dp": epsilon is not None,
        "epsilon": epsilon,
        "delta": getattr(predictor, "delta_", None),
        "noise_multiplier": getattr(predictor, "noise_multiplier_", None),
        "tuning": tuning,
    }
    return TrainedTarget(system, params, utility, train_accuracy, privacy, train_s)


@dataclass(frozen=True)
class AttackPlan:
    """Which attacks to run against a target, and how: the options `evaluate_membership_attacks`
    takes besides the pairs (None: each attack's own shadows; adaptive queries)."""

    attacks: tuple[str, ...]
    n_shadows: int | None = None
    queries: int | None = None
    levels: tuple[str, ...] = LEVELS


def attack_target(
    target: TrainedTarget,
    embedder: Embedder,
    root: str | Path,
    attacker: Sequence[Pair],
    members: Sequence[Pair],
    nonmembers: Sequence[Pair],
    plan: AttackPlan,
    seed: int,
    identity_nonmembers: Sequence[Pair] | None = None,
    on_attack: Callable[[str], None] | None = None,
) -> tuple[dict[str, dict[str, dict]], dict[str, float]]:
    """`evaluate_membership_attacks` against the trained target, its shadows trained like it
    on `attacker`; the target's query stream restarts from `seed`, so the figures of a plan
    do not depend on what was asked of the target before."""
    target.system.reset_query_stream(seed)  # the attacker meets the system as deployed
    return evaluate_membership_attacks(
        system_query_fn(target.system, root),
        system_shadow_trainer(target.params, embedder, root, target.system.suppressions_),
        attacker,
        members,
        nonmembers,
        levels=plan.levels,
        attacks=plan.attacks,
        seed=seed,
        n_shadows=plan.n_shadows,
        queries=plan.queries,
        identity_nonmembers=identity_nonmembers,
        on_attack=on_attack,
        shadow_size=len(members),
    )
