"""Defenses x regimes on the same splits: train each target, measure its utility, attack it.

For every (regime, defense) the runner trains the target on the regime's training pairs
(which are the members), measures utility on target_test (whose pairs are the non-members),
and runs each membership attack once: attacks fit on shadows trained only on the attacker's
pairs and score the members and non-members they never saw; the same scores are evaluated at
pair level and, averaged per person, at identity level. Shadows are shared between attacks
that ask for the same ones, and between the two levels.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

import facebone
from facebone.atomic import write_text_atomic
from facebone.attacks import check_attack_names, list_attacks
from facebone.attacks.runner import LEVELS, evaluate_membership_attacks
from facebone.attacks.system_target import system_query_fn, system_shadow_trainer
from facebone.data.pairs import Pair, pair_labels
from facebone.embeddings.cache import EmbeddingCache
from facebone.errors import FaceBoneError
from facebone.experiments.canaries import DEFAULT_CANARIES, DEFAULT_TARGETS, audit_defenses
from facebone.experiments.defenses import Defense, get_defense, list_defenses
from facebone.experiments.dp_tuning import tune_dp
from facebone.experiments.execution import EmbedderPool, run_jobs, torch_threads
from facebone.experiments.regimes import Regime, get_regime, list_regimes
from facebone.experiments.verdict import frontier, judge, summarise_runs
from facebone.metrics import verification_metrics
from facebone.system import FRSystem

log = logging.getLogger(__name__)

# Shadows per shadow-based attack in a comparison: None keeps each attack's own default
# (64 for online LiRA, 16 for offline LiRA, 4 for the black-box and label-only attacks).
DEFAULT_SHADOWS = None
# Split seeds per regime: with 100 members a leak-free model's AUC scatters by about +-0.03
# from seed to seed, so the leaking regime gets five.
DEFAULT_SEEDS = {"default": (0, 1, 2), "leaking": (0, 1, 2, 3, 4)}
# `experiment compare --quick`: the defenses that matter most, one seed per regime, the
# strongest attacks with fewer shadows, a small canary audit. Its figures are a preview: one
# seed, and online LiRA with 16 shadows is weaker than with 64.
QUICK: dict[str, Any] = {
    "defenses": (
        "none",
        "multi-rr-random",
        "multi-all-random",
        "dp-eps8",
        "cosine",
        "cosine-fusion",
    ),
    "seeds": {"default": (0,), "leaking": (0,)},
    "attacks": ("lira-online", "lira", "blackbox-gb"),
    "n_shadows": 16,
    "n_canaries": 16,
    "n_canary_targets": 8,
}


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
    people of `identity_test`, a subset of `test` drawn like `training`; default all).

    A DP-SGD target has its clipping norm and epochs tuned first, on the attacker's pairs
    only (`dp_tuning.tune_dp`); shadows are trained with the tuned options too.
    """
    started = time.perf_counter()
    embedder = embedders.get(params["backbones"])
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
    system.reset_query_stream(seed)  # the attacker meets the system as deployed
    predictor = system.predictor_
    epsilon = getattr(predictor, "epsilon_", None)
    privacy = {
        "dp": epsilon is not None,
        "epsilon": epsilon,
        "delta": getattr(predictor, "delta_", None),
        "noise_multiplier": getattr(predictor, "noise_multiplier_", None),
        "tuning": tuning,
    }
    attack_start = time.perf_counter()
    results, attack_seconds = evaluate_membership_attacks(
        system_query_fn(system, root),
        system_shadow_trainer(params, embedder, root),
        attacker,
        training,
        test,
        levels=LEVELS,
        attacks=attacks,
        seed=seed,
        n_shadows=n_shadows,
        identity_nonmembers=identity_test,
        on_attack=on_attack,
        shadow_size=len(training),
    )
    return {
        "system": params,
        "seed": seed,
        "n_train": len(training),
        "n_attacker": len(attacker),
        "n_test": len(test),
        "n_identity_test": len(test if identity_test is None else identity_test),
        "utility": utility,
        "train_accuracy": train_accuracy,
        "generalisation_gap": train_accuracy - utility["accuracy"],
        "privacy": privacy,
        "attacks": results,
        "best": {level: _best(results[level]) for level in LEVELS},
        "timings": {
            "train_s": train_s,
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


def compare(
    root: str | Path,
    protocol_for: Callable[[int], Mapping[str, Sequence[Pair]]],
    defenses: Sequence[str] | None = None,
    regimes: Sequence[str] | None = None,
    attacks: Sequence[str] | None = None,
    n_shadows: int | None = DEFAULT_SHADOWS,
    seeds: Mapping[str, Sequence[int]] | None = None,
    cache: EmbeddingCache | None = None,
    progress: bool = True,
    threads: int = 1,
    n_canaries: int = DEFAULT_CANARIES,
    n_canary_targets: int = DEFAULT_TARGETS,
    workers: int = 1,
) -> dict[str, Any]:
    """Every defense in every regime on each of the regime's split seeds (`seeds[regime]`,
    default `DEFAULT_SEEDS`), and the canary audit of each on the regime's first seed
    (`n_canaries=0` skips it); JSON-serialisable results with every run, the figures over
    seeds (`summary`), the canary figures, the goal verdict and the privacy-utility
    frontier. `workers` processes train and attack the configurations side by side."""
    defense_list = [get_defense(d) for d in dict.fromkeys(defenses or list_defenses())]
    regime_list = [get_regime(r) for r in dict.fromkeys(regimes or list_regimes())]
    attack_list = check_attack_names(attacks or list_attacks())
    n_shadows = check_shadows(n_shadows)
    seed_lists = {r.name: list((seeds or DEFAULT_SEEDS)[r.name]) for r in regime_list}
    started = time.perf_counter()
    protocols: dict[int, Mapping[str, Sequence[Pair]]] = {}

    def protocol_of(seed: int) -> Mapping[str, Sequence[Pair]]:
        if seed not in protocols:
            protocols[seed] = protocol_for(seed)
            check_protocol(protocols[seed])
        return protocols[seed]

    configurations = [
        Configuration(f"{r.name}/{d.name}/seed{seed}", r, d, seed)
        for r in regime_list
        for seed in seed_lists[r.name]
        for d in defense_list
    ]
    embedders = EmbedderPool(cache, progress)
    try:
        evaluated = evaluate_configurations(
            root,
            protocol_of,
            configurations,
            attack_list,
            n_shadows,
            cache=cache,
            progress=progress,
            threads=threads,
            desc="compare",
            unit="run",
            embedders=embedders,
            workers=workers,
        )
        canaries = {}
        if n_canaries:
            with torch_threads(threads):
                canaries = audit_defenses(
                    root,
                    protocol_of,
                    [(r, d, seed_lists[r.name][:1]) for r in regime_list for d in defense_list],
                    embedders,
                    n_canaries,
                    n_canary_targets,
                    progress,
                    workers,
                )
    finally:
        embedders.close()
    runs: dict[str, dict[str, list[dict]]] = {}
    for config, run in zip(configurations, evaluated, strict=True):
        runs.setdefault(config.regime.name, {}).setdefault(config.defense.name, []).append(run)
    summary = {
        regime: {defense: summarise_runs(seed_runs) for defense, seed_runs in by_defense.items()}
        for regime, by_defense in runs.items()
    }
    goal = judge(summary, canaries)
    return {
        "experiment": "compare",
        "facebone_version": facebone.__version__,
        "data": str(root),
        "seeds": seed_lists,
        "protocol": {
            str(seed): {r: len(p) for r, p in pr.items()} for seed, pr in protocols.items()
        },
        "attacks": attack_list,
        "n_shadows": n_shadows,
        "torch_threads": threads,
        "workers": workers,
        "defenses": {d.name: describe_defense(d) for d in defense_list},
        "regimes": {r.name: describe_regime(r) for r in regime_list},
        "runs": runs,
        "summary": summary,
        "canaries": canaries,
        "goal": goal,
        "frontier": frontier(summary, goal),
        "timings": {"total_s": time.perf_counter() - started},
    }


def check_shadows(n_shadows: int | None) -> int | None:
    if n_shadows is not None and (isinstance(n_shadows, bool) or n_shadows < 2):
        raise FaceBoneError(f"the number of shadows must be at least 2, got {n_shadows}")
    return n_shadows


def check_protocol(protocol: Mapping[str, Sequence[Pair]]) -> None:
    missing = [r for r in ("target_train", "target_test", "attacker") if not protocol.get(r)]
    if missing:
        raise FaceBoneError(f"the pair protocol has no {', '.join(missing)} pairs")


def describe_defense(defense) -> dict[str, Any]:
    return {
        "description": defense.description,
        "system": defense.system_params({}, seed=0) | {"seed": None},
    }


def describe_regime(regime: Regime) -> dict[str, Any]:
    return {
        "description": regime.description,
        "n_train": regime.n_train,
        "nn_params": dict(regime.nn_params),
    }


def save_results(results: dict[str, Any], path: str | Path) -> Path:
    """Write results as JSON, atomically."""
    path = Path(path)
    write_text_atomic(path, json.dumps(results, indent=1, sort_keys=False) + "\n")
    return path
