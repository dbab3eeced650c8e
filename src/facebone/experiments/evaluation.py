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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facebone.attacks.base import AttackError, QueryFn
from facebone.attacks.membership.runner import LEVELS, evaluate_membership_attacks
from facebone.attacks.registry import attack_class
from facebone.attacks.system_target import (
    SystemPairScores,
    SystemShadowTrainer,
    system_pair_scores,
    system_query_fn,
)
from facebone.data.pairs import Pair, pair_labels
from facebone.embeddings.embedder import Embedder
from facebone.experiments.dp_tuning import tune_dp
from facebone.metrics import verification_metrics
from facebone.system import FRSystem
from facebone.system.output_policy import OutputPolicy

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
    output: OutputPolicy = field(default_factory=OutputPolicy)  # what clients see

    def query_fn(self, root: str | Path) -> QueryFn:
        """The deployed system as a client meets it: pairs in, answers under `output`."""
        return system_query_fn(self.system, root, self.output)


def train_target(
    params: dict[str, Any],
    embedder: Embedder,
    root: str | Path,
    training: Sequence[Pair],
    test: Sequence[Pair],
    attacker: Sequence[Pair],
    seed: int,
    output: str = "probability",
) -> TrainedTarget:
    """Train `FRSystem(**params)` on `training` and measure its utility on `test` (from its
    probabilities: an `output` policy shows clients less, never other decisions).

    A DP-SGD target has its clipping norm and epochs tuned first, on the attacker's pairs
    only (`dp_tuning.tune_dp`); shadows are trained with the tuned options too. A member-free
    target (`calibration="public"`) calibrates on the attacker's pairs, which stand for a
    public calibration set of other people (the worst case: the attacker knows it).
    The attacker's pairs also stand for the public faces an attribute suppression is fitted
    on (again the worst case: the attacker knows the projection exactly).
    """
    started = time.perf_counter()
    tuning = None
    if params["predictor_params"].get("dp_epsilon") is not None:
        params, tuning = tune_dp(params, embedder, root, attacker, seed)
    system = FRSystem(**params).fit(
        embedder, root, training, public_pairs=public_pairs(params, attacker)
    )
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
    return TrainedTarget(
        system, params, utility, train_accuracy, privacy, train_s, OutputPolicy(output)
    )


def public_pairs(params: dict[str, Any], attacker: Sequence[Pair]) -> list[Pair] | None:
    """The public pairs a target of options `params` fits its calibration or its attribute
    suppression on: the attacker's (standing for public faces of other people); None for a
    target that uses none."""
    uses = params.get("calibration") == "public" or params.get("attribute_suppression") is not None
    return list(attacker) if uses else None


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
    on `attacker`, its pair scores computed with the public backbones; the target's query
    stream restarts from `seed`, so the figures of a plan do not depend on what was asked of
    the target before."""
    target.system.reset_query_stream(seed)  # the attacker meets the system as deployed
    public = public_pairs(target.params, attacker)
    scores = system_pair_scores(target.params, embedder, root, public)
    attacks = applicable_attacks(plan.attacks, scores)
    if not attacks:
        return {level: {} for level in plan.levels}, {}
    return evaluate_membership_attacks(
        target.query_fn(root),
        SystemShadowTrainer(
            target.params, embedder, root, public, target.output, target.system.suppressions_
        ),
        attacker,
        members,
        nonmembers,
        levels=plan.levels,
        attacks=attacks,
        seed=seed,
        n_shadows=plan.n_shadows,
        queries=plan.queries,
        identity_nonmembers=identity_nonmembers,
        on_attack=on_attack,
        shadow_size=len(members),
        pair_scores=scores,
    )


def applicable_attacks(names: Sequence[str], scores: SystemPairScores) -> tuple[str, ...]:
    """`names` without the attacks that read a calibration (`needs_pair_scores`) where the
    system has none to read (an nn predictor, answers through a backbone drawn per query):
    there they do not apply, and a study skips them for that system (logged)."""
    try:
        scores.design()
    except AttackError as refusal:
        skipped = [n for n in names if getattr(attack_class(n), "needs_pair_scores", False)]
        if skipped:
            log.info("%s: not applicable (%s)", ", ".join(skipped), refusal)
        return tuple(n for n in names if n not in skipped)
    return tuple(names)
