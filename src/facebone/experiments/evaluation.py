"""Train one target, measure its utility, attack it: the work of one (regime, defense, seed).

`train_target` trains and measures; `attack_target` runs membership attacks against the
trained target with its members and non-members; `evaluate_system` does both as one
JSON-serialisable run, which `compare` and the leakage map collect; the study engine
(`facebone.studies.engine`) calls the two halves itself to run attacks with options of their
own against one trained target.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from facebone.attacks.runner import LEVELS, evaluate_membership_attacks
from facebone.attacks.system_target import system_query_fn, system_shadow_trainer
from facebone.data.pairs import Pair, pair_labels
from facebone.embeddings.cache import EmbeddingCache
from facebone.embeddings.embedder import Embedder
from facebone.experiments.defenses import Defense
from facebone.experiments.dp_tuning import tune_dp
from facebone.experiments.execution import EmbedderPool, run_jobs, torch_threads
from facebone.experiments.regimes import Regime
from facebone.metrics import verification_metrics
from facebone.system import FRSystem

log = logging.getLogger(__name__)


def _best(attacks: Mapping[str, dict]) -> dict[str, Any]:
    name = max(attacks, key=lambda a: (attacks[a]["auc"], a))
    return {
        "attack": name,
        "auc": attacks[name]["auc"],
        "balanced_accuracy": attacks[name]["balanced_accuracy"],
        "advantage": attacks[name]["advantage"],
        "tpr_at_fpr": dict(attacks[name]["tpr_at_fpr"]),
        "max_tpr_at_fpr": {
            fpr: max(a["tpr_at_fpr"][fpr] for a in attacks.values())
            for fpr in attacks[name]["tpr_at_fpr"]
        },
    }


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
    only (`dp_tuning.tune_dp`); shadows are trained with the tuned options too.
    """
    started = time.perf_counter()
    tuning = None
    if params["predictor_params"].get("dp_epsilon") is not None:
        params, tuning = tune_dp(params, embedder, root, attacker, seed)
    system = FRSystem(**params).fit(embedder, root, training)
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
        system_shadow_trainer(target.params, embedder, root),
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


def evaluate_system(
    params: dict[str, Any],
    embedders: EmbedderPool,
    root: str | Path,
    training: Sequence[Pair],
    test: Sequence[Pair],
    attacker: Sequence[Pair],
    attacks: Sequence[str],
    n_shadows: int | None,
    seed: int,
    identity_test: Sequence[Pair] | None = None,
    on_attack: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train one target (`FRSystem(**params)`) on `training`, measure utility on `test`, and
    attack it with `training` as members and `test` as non-members (at identity level, the
    people of `identity_test`, a subset of `test` drawn like `training`; default all)."""
    started = time.perf_counter()
    embedder = embedders.get(params["backbones"])
    target = train_target(params, embedder, root, training, test, attacker, seed)
    attack_start = time.perf_counter()
    results, attack_seconds = attack_target(
        target,
        embedder,
        root,
        attacker,
        training,
        test,
        AttackPlan(tuple(attacks), n_shadows),
        seed,
        identity_nonmembers=identity_test,
        on_attack=on_attack,
    )
    return {
        "system": target.params,
        "seed": seed,
        "n_train": len(training),
        "n_attacker": len(attacker),
        "n_test": len(test),
        "n_identity_test": len(test if identity_test is None else identity_test),
        "utility": target.utility,
        "train_accuracy": target.train_accuracy,
        "generalisation_gap": target.train_accuracy - target.utility["accuracy"],
        "privacy": target.privacy,
        "attacks": results,
        "best": {level: _best(results[level]) for level in LEVELS},
        "timings": {
            "train_s": target.train_s,
            "attack_s": time.perf_counter() - attack_start,
            "per_attack_s": attack_seconds,
            "total_s": time.perf_counter() - started,
        },
    }


@dataclass(frozen=True)
class Configuration:
    """One target to train and attack: a defense in a regime on one split seed."""

    label: str
    regime: Regime
    defense: Defense
    seed: int


def evaluate_configuration(
    root: str | Path,
    protocol: Mapping[str, Sequence[Pair]],
    config: Configuration,
    attacks: Sequence[str],
    n_shadows: int | None,
    embedders: EmbedderPool,
    on_attack: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """`evaluate_system` for one configuration on `protocol`: the regime's subset of
    target_train is trained on (the members), target_test gives utility and the non-members
    (at identity level, the regime's subset of it, drawn like the members), and the regime's
    subset of the attacker's pairs trains the shadows."""
    regime, seed = config.regime, config.seed
    training = regime.training_pairs(protocol["target_train"], seed)
    run = evaluate_system(
        config.defense.system_params(regime.nn_params, seed),
        embedders,
        root,
        training,
        protocol["target_test"],
        regime.attacker_pairs(protocol["attacker"], len(training), seed),
        attacks,
        n_shadows,
        seed,
        identity_test=regime.training_pairs(protocol["target_test"], seed),
        on_attack=on_attack,
    )
    log.info(
        "%s: accuracy %.3f (train %.3f); best attack AUC pair %.3f (%s), identity %.3f (%s); "
        "%.1f s",
        config.label,
        run["utility"]["accuracy"],
        run["train_accuracy"],
        run["best"]["pair"]["auc"],
        run["best"]["pair"]["attack"],
        run["best"]["identity"]["auc"],
        run["best"]["identity"]["attack"],
        run["timings"]["total_s"],
    )
    return run


def evaluate_configurations(
    root: str | Path,
    protocol_for: Callable[[int], Mapping[str, Sequence[Pair]]],
    configurations: Sequence[Configuration],
    attacks: Sequence[str],
    n_shadows: int | None,
    cache: EmbeddingCache | None = None,
    progress: bool = True,
    threads: int = 1,
    desc: str = "systems",
    unit: str = "run",
    embedders: EmbedderPool | None = None,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """`evaluate_configuration` for each configuration on the splits of its seed
    (`protocol_for(seed)`); one run per configuration, in order.

    With `workers` > 1 the configurations run in that many processes (each seeded run gives
    the same figures wherever it runs); otherwise here, with embedders shared between
    configurations (from `embedders`, else a pool closed at the end) and `threads` torch
    threads (restored afterwards).
    """
    bar = tqdm(total=len(configurations), desc=desc, unit=unit, disable=not progress)
    try:
        if workers > 1:
            jobs = [(root, protocol_for(c.seed), c, attacks, n_shadows) for c in configurations]
            labels = [c.label for c in configurations]
            return run_jobs(_evaluate_job, jobs, workers, cache, bar, labels)
        own_pool = embedders is None
        pool = EmbedderPool(cache, progress) if embedders is None else embedders
        runs = []
        try:
            with torch_threads(threads):
                for config in configurations:
                    bar.set_postfix_str(config.label)
                    runs.append(
                        evaluate_configuration(
                            root,
                            protocol_for(config.seed),
                            config,
                            attacks,
                            n_shadows,
                            pool,
                            on_attack=lambda name, label=config.label: bar.set_postfix_str(
                                f"{label} {name}"
                            ),
                        )
                    )
                    bar.update()
        finally:
            if own_pool:
                pool.close()
        return runs
    finally:
        bar.close()


def _evaluate_job(
    embedders: EmbedderPool,
    root: str | Path,
    protocol: Mapping[str, Sequence[Pair]],
    config: Configuration,
    attacks: Sequence[str],
    n_shadows: int | None,
) -> dict[str, Any]:
    return evaluate_configuration(root, protocol, config, attacks, n_shadows, embedders)
