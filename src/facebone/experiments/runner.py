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
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from scipy import stats
from tqdm import tqdm

import facebone
from facebone.atomic import write_text_atomic
from facebone.attacks import check_attack_names, list_attacks
from facebone.attacks.metrics import LOW_FPRS
from facebone.attacks.runner import LEVELS, evaluate_membership_attacks
from facebone.attacks.system_target import system_query_fn, system_shadow_trainer
from facebone.data.pairs import Pair, pair_labels
from facebone.embeddings.cache import EmbeddingCache
from facebone.embeddings.embedder import Embedder
from facebone.errors import FaceBoneError
from facebone.experiments.defenses import UNDEFENDED, Defense, get_defense, list_defenses
from facebone.experiments.regimes import Regime, get_regime, list_regimes
from facebone.metrics import verification_metrics
from facebone.system import FRSystem

log = logging.getLogger(__name__)

# The goal for a defended system, in every regime.
GOAL = {"min_accuracy": 0.99, "max_auc": 0.55, "max_tpr_at_1pct_fpr": 0.02}
# Chance bounds hold for the strongest attack with probability about 1 - CHANCE_ALPHA.
CHANCE_ALPHA = 0.05
# Shadows per shadow-based attack in a full comparison: LiRA's default of 16 (plus 4 for the
# black-box attacks) would take most of the 10-minute budget over 20 configurations alone.
DEFAULT_SHADOWS = 4


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with `n` torch threads, then restore: tiny MLPs train fastest on one thread, and
    several threads fight each other on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class EmbedderPool:
    """One `Embedder` per backbone combination, created on first use and closed together."""

    def __init__(self, cache: EmbeddingCache | None, progress: bool) -> None:
        self.cache = cache
        self.progress = progress
        self._embedders: dict[tuple[str, ...], Embedder] = {}

    def get(self, backbones: Sequence[str]) -> Embedder:
        key = tuple(backbones)
        if key not in self._embedders:
            self._embedders[key] = Embedder(key, self.cache, self.progress)
        return self._embedders[key]

    def close(self) -> None:
        for embedder in self._embedders.values():
            embedder.close()
        self._embedders.clear()


def chance_bounds(
    n_members: int, n_nonmembers: int, n_tests: int, alpha: float = CHANCE_ALPHA
) -> dict[str, Any]:
    """What the strongest of `n_tests` attack evaluations at chance stays below with
    probability about 1 - alpha (Bonferroni, so conservative for correlated attacks).

    AUC: the null Mann-Whitney AUC, normal approximation. TPR at FPR f: with k = floor(f * n)
    false positives allowed among n non-members, the best threshold is the (k+1)-th highest
    non-member score; under the null a member lies above it with probability
    Beta(k+1, n-k), so the number of members above is beta-binomial. With 100 members and
    ~100 non-members a chance attack reaches a few percent TPR at 1% FPR.
    """
    level = 1.0 - alpha / max(n_tests, 1)
    sd = math.sqrt((n_members + n_nonmembers + 1) / (12.0 * n_members * n_nonmembers))
    tpr = {}
    for fpr in LOW_FPRS:
        k = math.floor(fpr * n_nonmembers + 1e-12)
        count = stats.betabinom.ppf(level, n_members, k + 1, n_nonmembers - k)
        tpr[str(fpr)] = float(count) / n_members
    return {"auc": 0.5 + float(stats.norm.ppf(level)) * sd, "tpr_at_fpr": tpr}


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
    people of `identity_test`, a subset of `test` drawn like `training`; default all)."""
    started = time.perf_counter()
    embedder = embedders.get(params["backbones"])
    system = FRSystem(**params).fit(embedder, root, training)
    train_s = time.perf_counter() - started
    test_labels = pair_labels(test)
    utility = verification_metrics(test_labels, system.predict_proba(root, test))
    train_labels = pair_labels(training)
    train_accuracy = verification_metrics(train_labels, system.predict_proba(root, training))[
        "accuracy"
    ]
    system.reset_query_stream(seed)  # the attacker meets the system as deployed
    predictor = system.predictor_
    epsilon = getattr(predictor, "epsilon_", None)
    privacy = {
        "dp": epsilon is not None,
        "epsilon": epsilon,
        "delta": getattr(predictor, "delta_", None),
        "noise_multiplier": getattr(predictor, "noise_multiplier_", None),
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
    n_tests = len(results["pair"]) * len(LEVELS)
    n_member_people = results["identity"][attacks[0]]["n_members"]
    n_nonmember_people = results["identity"][attacks[0]]["n_nonmembers"]
    return {
        "system": params,
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
        "chance": {
            # The goal takes the strongest of every attack at both levels.
            "pair": chance_bounds(len(training), len(test), n_tests),
            "identity": chance_bounds(n_member_people, n_nonmember_people, n_tests),
        },
        "timings": {
            "train_s": train_s,
            "attack_s": time.perf_counter() - attack_start,
            "per_attack_s": attack_seconds,
            "total_s": time.perf_counter() - started,
        },
    }


def evaluate_configurations(
    root: str | Path,
    protocol: Mapping[str, Sequence[Pair]],
    configurations: Sequence[tuple[str, Regime, Defense]],
    attacks: Sequence[str],
    n_shadows: int | None,
    seed: int,
    cache: EmbeddingCache | None = None,
    progress: bool = True,
    threads: int = 1,
    desc: str = "systems",
    unit: str = "run",
) -> list[dict[str, Any]]:
    """`evaluate_system` for each `(label, regime, defense)`, in order, on the protocol's
    splits: the regime's subset of target_train is trained on (the members), target_test
    gives utility and the non-members (at identity level, the regime's subset of it, drawn
    like the members), and the regime's subset of the attacker's pairs trains the shadows.

    Embedders are shared between configurations and closed at the end; training runs with
    `threads` torch threads (restored afterwards). Returns one run per configuration.
    """
    runs: list[dict[str, Any]] = []
    embedders = EmbedderPool(cache, progress)
    bar = tqdm(configurations, desc=desc, unit=unit, disable=not progress)
    try:
        with torch_threads(threads):
            for label, regime, defense in bar:
                bar.set_postfix_str(label)
                training = regime.training_pairs(protocol["target_train"], seed)
                run = evaluate_system(
                    defense.system_params(regime.nn_params, seed),
                    embedders,
                    root,
                    training,
                    protocol["target_test"],
                    regime.attacker_pairs(protocol["attacker"], len(training), seed),
                    attacks,
                    n_shadows,
                    seed,
                    identity_test=regime.training_pairs(protocol["target_test"], seed),
                    on_attack=lambda name, label=label: bar.set_postfix_str(f"{label} {name}"),
                )
                log.info(
                    "%s: accuracy %.3f (train %.3f); best attack AUC pair %.3f (%s), "
                    "identity %.3f (%s); %.1f s",
                    label,
                    run["utility"]["accuracy"],
                    run["train_accuracy"],
                    run["best"]["pair"]["auc"],
                    run["best"]["pair"]["attack"],
                    run["best"]["identity"]["auc"],
                    run["best"]["identity"]["attack"],
                    run["timings"]["total_s"],
                )
                runs.append(run)
    finally:
        bar.close()
        embedders.close()
    return runs


def check_shadows(n_shadows: int | None) -> int | None:
    if n_shadows is not None and (isinstance(n_shadows, bool) or n_shadows < 2):
        raise FaceBoneError(f"the number of shadows must be at least 2, got {n_shadows}")
    return n_shadows


def check_protocol(protocol: Mapping[str, Sequence[Pair]]) -> None:
    missing = [r for r in ("target_train", "target_test", "attacker") if not protocol.get(r)]
    if missing:
        raise FaceBoneError(f"the pair protocol has no {', '.join(missing)} pairs")


def meets_goal(run: dict[str, Any]) -> dict[str, Any]:
    """The goal's figures for one run: the worst case over attacks and levels.

    `meets` is the goal as stated. `meets_within_chance` also accepts an attack figure above
    the goal but below what the strongest attack at chance reaches on this many members and
    non-members (`run["chance"]`), where the measurement cannot tell the two apart.
    """
    accuracy = run["utility"]["accuracy"]
    fails, beyond_chance = [], []
    if accuracy < GOAL["min_accuracy"]:
        fails.append(f"accuracy {accuracy:.3f} < {GOAL['min_accuracy']}")
        beyond_chance.append(fails[-1])
    figures = {"accuracy": accuracy, "max_auc": 0.0, "max_tpr_at_1pct_fpr": 0.0}
    for level in LEVELS:
        chance = run["chance"][level]
        for name, metrics in run["attacks"][level].items():
            checks = (
                ("max_auc", "AUC", metrics["auc"], GOAL["max_auc"], chance["auc"]),
                (
                    "max_tpr_at_1pct_fpr",
                    "TPR@1%FPR",
                    metrics["tpr_at_fpr"]["0.01"],
                    GOAL["max_tpr_at_1pct_fpr"],
                    chance["tpr_at_fpr"]["0.01"],
                ),
            )
            for key, what, value, limit, noise in checks:
                figures[key] = max(figures[key], value)
                if value > limit:
                    fails.append(f"{name} {level} {what} {value:.3f} > {limit}")
                    if value > noise:
                        beyond_chance.append(f"{fails[-1]} (chance < {noise:.3f})")
    return {
        **figures,
        "meets": not fails,
        "fails": fails,
        "meets_within_chance": not beyond_chance,
        "fails_beyond_chance": beyond_chance,
    }


def goal_summary(runs: Mapping[str, Mapping[str, dict]]) -> dict[str, Any]:
    """Which defenses meet the goal in every regime run, and the best of them (highest worst-
    case accuracy); the undefended system is checked but never chosen."""
    per_defense: dict[str, dict[str, Any]] = {}
    for regime, by_defense in runs.items():
        for defense, run in by_defense.items():
            per_defense.setdefault(defense, {"regimes": {}})["regimes"][regime] = meets_goal(run)
    for entry in per_defense.values():
        entry["meets"] = all(r["meets"] for r in entry["regimes"].values())
        entry["meets_within_chance"] = all(
            r["meets_within_chance"] for r in entry["regimes"].values()
        )
        entry["min_accuracy"] = min(r["accuracy"] for r in entry["regimes"].values())

    def best_of(key: str) -> tuple[list[str], str | None]:
        meeting = [d for d, e in per_defense.items() if e[key] and d != UNDEFENDED]
        best = max(meeting, key=lambda d: per_defense[d]["min_accuracy"]) if meeting else None
        return meeting, best

    meeting, best = best_of("meets")
    meeting_within_chance, best_within_chance = best_of("meets_within_chance")
    return {
        "criteria": dict(GOAL),
        "scope": "every attack, pair and identity level, every regime run",
        "chance_alpha": CHANCE_ALPHA,
        "defenses": per_defense,
        "meeting": meeting,
        "best_defense": best,
        "meeting_within_chance": meeting_within_chance,
        "best_within_chance": best_within_chance,
    }


def compare(
    root: str | Path,
    protocol: Mapping[str, Sequence[Pair]],
    defenses: Sequence[str] | None = None,
    regimes: Sequence[str] | None = None,
    attacks: Sequence[str] | None = None,
    n_shadows: int | None = DEFAULT_SHADOWS,
    seed: int = 0,
    cache: EmbeddingCache | None = None,
    progress: bool = True,
    threads: int = 1,
) -> dict[str, Any]:
    """Every defense in every regime, on the same splits; JSON-serialisable results.

    Training runs with `threads` torch threads (restored afterwards).
    """
    check_protocol(protocol)
    defense_list = [get_defense(d) for d in dict.fromkeys(defenses or list_defenses())]
    regime_list = [get_regime(r) for r in dict.fromkeys(regimes or list_regimes())]
    attack_list = check_attack_names(attacks or list_attacks())
    n_shadows = check_shadows(n_shadows)
    started = time.perf_counter()
    configurations = [(f"{r.name}/{d.name}", r, d) for r in regime_list for d in defense_list]
    evaluated = evaluate_configurations(
        root,
        protocol,
        configurations,
        attack_list,
        n_shadows,
        seed,
        cache=cache,
        progress=progress,
        threads=threads,
        desc="compare",
        unit="run",
    )
    runs: dict[str, dict[str, dict]] = {}
    for (_, regime, defense), run in zip(configurations, evaluated, strict=True):
        runs.setdefault(regime.name, {})[defense.name] = run
    return {
        "experiment": "compare",
        "facebone_version": facebone.__version__,
        "data": str(root),
        "seed": seed,
        "protocol": {role: len(pairs) for role, pairs in protocol.items()},
        "attacks": attack_list,
        "n_shadows": n_shadows,
        "torch_threads": threads,
        "defenses": {d.name: describe_defense(d) for d in defense_list},
        "regimes": {r.name: describe_regime(r) for r in regime_list},
        "runs": runs,
        "goal": goal_summary(runs),
        "timings": {"total_s": time.perf_counter() - started},
    }


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
