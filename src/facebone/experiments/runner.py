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

import numpy as np
import torch
from tqdm import tqdm

import facebone
from facebone.atomic import write_text_atomic
from facebone.attacks import cached_shadow_trainer, create_attack, list_attacks
from facebone.attacks.base import identity_scores, pair_identities, pair_key
from facebone.attacks.metrics import evaluate_scores
from facebone.attacks.system_target import system_query_fn, system_shadow_trainer
from facebone.data.pairs import Pair
from facebone.embeddings.cache import EmbeddingCache
from facebone.embeddings.embedder import Embedder
from facebone.errors import FaceBoneError
from facebone.experiments.defenses import UNDEFENDED, get_defense, list_defenses
from facebone.experiments.regimes import Regime, get_regime, list_regimes
from facebone.metrics import verification_metrics
from facebone.system import FRSystem

log = logging.getLogger(__name__)

LEVELS = ("pair", "identity")
# The goal for a defended system, in every regime.
GOAL = {"min_accuracy": 0.99, "max_auc": 0.55, "max_tpr_at_1pct_fpr": 0.02}
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


def chance_auc_bound(n_members: int, n_nonmembers: int) -> float:
    """AUC that a single attack at chance stays below with ~97.5% probability (normal
    approximation of the null AUC's spread); a maximum over several attacks exceeds it more
    often."""
    sd = math.sqrt((n_members + n_nonmembers + 1) / (12.0 * n_members * n_nonmembers))
    return 0.5 + 1.96 * sd


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


def attack_system(
    target: Callable[[Sequence[Pair]], np.ndarray],
    shadow_trainer: Callable,
    attacker_pairs: Sequence[Pair],
    members: Sequence[Pair],
    nonmembers: Sequence[Pair],
    attacks: Sequence[str],
    n_shadows: int | None,
    seed: int,
    identity_nonmembers: Sequence[Pair] | None = None,
    on_attack: Callable[[str], None] | None = None,
) -> tuple[dict[str, dict[str, dict]], dict[str, float]]:
    """Fit each attack on the attacker's pairs, score members and non-members once, evaluate
    at both levels. Returns `({level: {attack: metrics}}, {attack: seconds})`.

    `n_shadows` (None: each attack's default) replaces the shadow count of every attack that
    trains shadows. The identity level mirrors `run_membership_attacks`: a person's score is
    the mean score of the candidate pairs involving them, and the attack's cut (chosen on
    shadow pairs) is applied to it. `identity_nonmembers` (a subset of `nonmembers`; default
    all) are the non-member pairs whose people are the identity level's non-members: drawn
    like the members, they give non-member people as many pairs each as member people have.
    A mean over fewer pairs spreads wider, so with unequal counts the side with fewer pairs
    per person fills both tails of the scores, and TPR at low FPR measures that, not memory.
    """
    members, nonmembers = list(members), list(nonmembers)
    outside_people = list(nonmembers if identity_nonmembers is None else identity_nonmembers)
    row_of = {pair_key(p): len(members) + i for i, p in enumerate(nonmembers)}
    if any(pair_key(p) not in row_of for p in outside_people):
        raise FaceBoneError("identity_nonmembers must be a subset of nonmembers")
    identity_pairs = members + outside_people
    identity_rows = np.r_[np.arange(len(members)), [row_of[pair_key(p)] for p in outside_people]]
    identity_rows = identity_rows.astype(np.int64)
    if {pair_key(p) for p in members} & {pair_key(p) for p in nonmembers}:
        raise FaceBoneError("some pairs are both members and non-members")
    member_people = {who for p in members for who in pair_identities(p)}
    if member_people & {who for p in nonmembers for who in pair_identities(p)}:
        raise FaceBoneError(
            "members and non-members share people; use the identity-disjoint protocol"
        )
    candidates = members + nonmembers
    is_member = np.r_[np.ones(len(members), bool), np.zeros(len(nonmembers), bool)]
    shadows = cached_shadow_trainer(shadow_trainer)
    results: dict[str, dict[str, dict]] = {level: {} for level in LEVELS}
    seconds: dict[str, float] = {}
    for name in dict.fromkeys(attacks):
        if on_attack is not None:
            on_attack(name)
        start = time.perf_counter()
        attack = create_attack(name, seed)
        if n_shadows is not None and hasattr(attack, "n_shadows"):
            attack.n_shadows = n_shadows
        attack.fit(shadows, attacker_pairs)
        scores = attack.infer(target, candidates)
        results["pair"][name] = evaluate_scores(is_member, scores, attack.threshold_)
        people = identity_scores(identity_pairs, scores[identity_rows])
        names = sorted(people)
        identity = evaluate_scores(
            np.array([who in member_people for who in names]),
            np.array([people[who] for who in names]),
            attack.threshold_,
        )
        identity["balanced_accuracy_threshold"] = "shadow-pair"
        results["identity"][name] = identity
        seconds[name] = time.perf_counter() - start
    return results, seconds


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
    test_labels = np.array([p.label for p in test])
    utility = verification_metrics(test_labels, system.predict_proba(root, test))
    train_labels = np.array([p.label for p in training])
    train_accuracy = verification_metrics(train_labels, system.predict_proba(root, training))[
        "accuracy"
    ]
    system.reset_query_stream()  # the attacker meets the system as deployed
    predictor = system.predictor_
    epsilon = getattr(predictor, "epsilon_", None)
    privacy = {
        "dp": epsilon is not None,
        "epsilon": epsilon,
        "delta": getattr(predictor, "delta_", None),
        "noise_multiplier": getattr(predictor, "noise_multiplier_", None),
    }
    attack_start = time.perf_counter()
    results, attack_seconds = attack_system(
        system_query_fn(system, root),
        system_shadow_trainer(params, embedder, root),
        attacker,
        training,
        test,
        attacks,
        n_shadows,
        seed,
        identity_test,
        on_attack,
    )
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
        "chance_auc_95": {
            "pair": chance_auc_bound(len(training), len(test)),
            "identity": chance_auc_bound(n_member_people, n_nonmember_people),
        },
        "timings": {
            "train_s": train_s,
            "attack_s": time.perf_counter() - attack_start,
            "per_attack_s": attack_seconds,
            "total_s": time.perf_counter() - started,
        },
    }


def check_attacks(attacks: Sequence[str]) -> list[str]:
    attacks = list(dict.fromkeys(attacks))
    known = list_attacks()
    if not attacks:
        raise FaceBoneError(f"no attack chosen; choose from: {', '.join(known)}")
    unknown = [a for a in attacks if a not in known]
    if unknown:
        raise FaceBoneError(f"unknown attack {unknown[0]!r}; choose from: {', '.join(known)}")
    return attacks


def check_shadows(n_shadows: int | None) -> int | None:
    if n_shadows is not None and (isinstance(n_shadows, bool) or n_shadows < 2):
        raise FaceBoneError(f"the number of shadows must be at least 2, got {n_shadows}")
    return n_shadows


def check_protocol(protocol: Mapping[str, Sequence[Pair]]) -> None:
    missing = [r for r in ("target_train", "target_test", "attacker") if not protocol.get(r)]
    if missing:
        raise FaceBoneError(f"the pair protocol has no {', '.join(missing)} pairs")


def meets_goal(run: dict[str, Any]) -> dict[str, Any]:
    """The goal's three figures for one run (worst case over attacks and levels)."""
    accuracy = run["utility"]["accuracy"]
    max_auc = max(a["auc"] for level in LEVELS for a in run["attacks"][level].values())
    max_tpr = max(
        a["tpr_at_fpr"]["0.01"] for level in LEVELS for a in run["attacks"][level].values()
    )
    fails = []
    if accuracy < GOAL["min_accuracy"]:
        fails.append(f"accuracy {accuracy:.3f} < {GOAL['min_accuracy']}")
    if max_auc > GOAL["max_auc"]:
        fails.append(f"attack AUC {max_auc:.3f} > {GOAL['max_auc']}")
    if max_tpr > GOAL["max_tpr_at_1pct_fpr"]:
        fails.append(f"TPR@1%FPR {max_tpr:.3f} > {GOAL['max_tpr_at_1pct_fpr']}")
    return {
        "accuracy": accuracy,
        "max_auc": max_auc,
        "max_tpr_at_1pct_fpr": max_tpr,
        "meets": not fails,
        "fails": fails,
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
        entry["min_accuracy"] = min(r["accuracy"] for r in entry["regimes"].values())
    meeting = [d for d, e in per_defense.items() if e["meets"] and d != UNDEFENDED]
    best = max(meeting, key=lambda d: per_defense[d]["min_accuracy"]) if meeting else None
    return {
        "criteria": dict(GOAL),
        "scope": "every attack, pair and identity level, every regime run",
        "defenses": per_defense,
        "meeting": meeting,
        "best_defense": best,
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
    attack_list = check_attacks(attacks or list_attacks())
    n_shadows = check_shadows(n_shadows)
    started = time.perf_counter()
    runs: dict[str, dict[str, dict]] = {}
    embedders = EmbedderPool(cache, progress)
    steps = [(r, d) for r in regime_list for d in defense_list]
    bar = tqdm(steps, desc="compare", unit="run", disable=not progress)
    try:
        with torch_threads(threads):
            for regime, defense in bar:
                label = f"{regime.name}/{defense.name}"
                bar.set_postfix_str(label)
                training = regime.training_pairs(protocol["target_train"], seed)
                attacker = regime.attacker_pairs(protocol["attacker"], len(training), seed)
                run = evaluate_system(
                    defense.system_params(regime.nn_params, seed),
                    embedders,
                    root,
                    training,
                    protocol["target_test"],
                    attacker,
                    attack_list,
                    n_shadows,
                    seed,
                    identity_test=regime.training_pairs(protocol["target_test"], seed),
                    on_attack=lambda name, label=label: bar.set_postfix_str(f"{label} {name}"),
                )
                runs.setdefault(regime.name, {})[defense.name] = run
                log.info(
                    "%s: accuracy %.3f; best attack AUC pair %.3f (%s), identity %.3f (%s); %.1f s",
                    label,
                    run["utility"]["accuracy"],
                    run["best"]["pair"]["auc"],
                    run["best"]["pair"]["attack"],
                    run["best"]["identity"]["auc"],
                    run["best"]["identity"]["attack"],
                    run["timings"]["total_s"],
                )
    finally:
        bar.close()
        embedders.close()
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
