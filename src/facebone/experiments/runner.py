"""Defenses x regimes on the same splits: train each target, measure its utility, attack it
(`evaluation.py`), then judge the figures over seeds against the goal (`verdict.py`).

For every (regime, defense) the runner trains the target on the regime's training pairs
(which are the members), measures utility on target_test (whose pairs are the non-members),
and runs each membership attack once: attacks fit on shadows trained only on the attacker's
pairs and score the members and non-members they never saw; the same scores are evaluated at
pair level and, averaged per person, at identity level. Shadows are shared between attacks
that ask for the same ones, and between the two levels.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import facebone
from facebone.atomic import write_text_atomic
from facebone.attacks import check_attack_names, list_attacks
from facebone.data.pairs import Pair
from facebone.embeddings.cache import EmbeddingCache
from facebone.errors import FaceBoneError
from facebone.experiments.canaries import DEFAULT_CANARIES, DEFAULT_TARGETS, audit_defenses
from facebone.experiments.defenses import get_defense, list_defenses
from facebone.experiments.evaluation import Configuration, evaluate_configurations
from facebone.experiments.execution import EmbedderPool, torch_threads
from facebone.experiments.regimes import Regime, get_regime, list_regimes
from facebone.experiments.verdict import frontier, judge, summarise_runs

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
