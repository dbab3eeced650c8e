"""Canary audit (after Aerni, Zhang and Tramer, CCS 2024): how well are the most vulnerable
pairs protected?

An average over ordinary members hides the few pairs a model memorises most. The audit
plants canaries, pairs chosen to be memorised, into the training set: mislabeled pairs (a
same-person pair labelled "different" and the reverse) and correctly labelled pairs of the
faces least like all others. It trains `n_targets` systems of one defense, each on the
regime's training pairs plus a random half of the canaries, and lets each target in turn
be attacked by online LiRA with the other targets as its IN/OUT references. The figure is
TPR at low FPR over every (target, canary), where 1024 negatives resolve 0.1% FPR.

Canaries come from the target_test people: never members, never the attacker's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import facebone
from facebone.attacks.base import logit_confidence
from facebone.attacks.membership.base import answers_vary, repeated_query
from facebone.attacks.membership.lira_online import likelihood_ratio
from facebone.attacks.membership.metrics import evaluate_scores
from facebone.attacks.membership.runner import ADAPTIVE_QUERIES
from facebone.attacks.system_target import system_query_fn
from facebone.data.pairs import Pair, pair_labels
from facebone.embeddings.cache import EmbeddingCache
from facebone.embeddings.embedder import Embedder
from facebone.errors import FaceBoneError
from facebone.experiments.defenses import Defense, get_defense
from facebone.experiments.dp_tuning import tune_dp
from facebone.experiments.evaluation import public_pairs
from facebone.experiments.execution import EmbedderPool, run_jobs, torch_threads
from facebone.experiments.regimes import Regime, get_regime
from facebone.experiments.statistics import mean_sd
from facebone.predictors import l2_normalize
from facebone.system import FRSystem

log = logging.getLogger(__name__)

DEFAULT_CANARIES = 64
DEFAULT_TARGETS = 32
KINDS = ("mislabeled", "atypical")


def atypicality(embeddings: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Per image, minus its mean cosine similarity to all other images: high for a face
    unlike the rest (pose, lighting, occlusion), the kind a model memorises."""
    names = sorted(embeddings)
    matrix = l2_normalize(np.stack([embeddings[n] for n in names]))
    similarity = matrix @ matrix.T
    mean_other = (similarity.sum(1) - 1.0) / max(len(names) - 1, 1)
    return dict(zip(names, (-mean_other).tolist(), strict=True))


def check_canary_options(n_canaries: int, n_targets: int) -> None:
    """Half the canaries are mislabeled and half atypical, each half split between
    same-person and different-person pairs: a multiple of 4. Each target is scored with
    the others as references, which needs a few of them."""
    if n_canaries < 4 or n_canaries % 4:
        raise FaceBoneError(
            f"the number of canaries must be a multiple of 4 (>= 4), got {n_canaries}"
        )
    if n_targets < 4:
        raise FaceBoneError(f"the canary audit needs at least 4 targets, got {n_targets}")


def plant_canaries(
    pool: Sequence[Pair], strangeness: Mapping[str, float], n: int, rng: np.random.Generator
) -> tuple[list[Pair], list[str]]:
    """`n` canaries from `pool` (pairs of non-member people) and the kind of each: half
    mislabeled (label flipped, half of them same-person), half the most atypical pairs."""
    by_label = {label: [p for p in pool if p.label == label] for label in (0, 1)}
    if min(len(v) for v in by_label.values()) < n // 2:
        raise FaceBoneError(f"too few candidate pairs for {n} canaries")
    canaries: list[Pair] = []
    kinds: list[str] = []
    for label in (1, 0):
        ranked = sorted(
            by_label[label],
            key=lambda p: -(strangeness[p.image1] + strangeness[p.image2]),
        )
        atypical = ranked[: n // 4]
        rest = [p for p in by_label[label] if p not in set(atypical)]
        flipped = [rest[i] for i in rng.choice(len(rest), n // 4, replace=False)]
        for pair in atypical:
            canaries.append(pair)
            kinds.append("atypical")
        for pair in flipped:
            canaries.append(Pair(pair.image1, pair.image2, 1 - pair.label))
            kinds.append("mislabeled")
    return canaries, kinds


def canary_audit(
    root: str | Path,
    protocol: Mapping[str, Sequence[Pair]],
    regime: Regime,
    defense: Defense,
    embedder: Embedder,
    seed: int,
    n_canaries: int = DEFAULT_CANARIES,
    n_targets: int = DEFAULT_TARGETS,
) -> dict[str, Any]:
    """Plant canaries, train `n_targets` targets of `defense` in `regime`, attack each with
    the others as references; metrics over all (target, canary), and per kind."""
    check_canary_options(n_canaries, n_targets)
    rng = np.random.default_rng([seed, 104])
    training = regime.training_pairs(protocol["target_train"], seed)
    test = list(protocol["target_test"])
    images = sorted({i for p in test for i in (p.image1, p.image2)})
    strangeness = atypicality(embedder.dataset(root, images)[embedder.names[0]])
    canaries, kinds = plant_canaries(test, strangeness, n_canaries, rng)
    # Each canary is IN for exactly half of the targets.
    inside = np.stack([rng.permutation(n_targets) < n_targets // 2 for _ in canaries], axis=1)
    params = defense.system_params(regime.nn_params, seed)
    attacker = regime.attacker_pairs(protocol["attacker"], len(training), seed)
    if defense.dp_epsilon is not None:
        params, _ = tune_dp(params, embedder, root, attacker, seed)
    systems = [FRSystem(**{**params, "seed": seed * 1000 + t}) for t in range(n_targets)]
    FRSystem.fit_many(
        systems,
        embedder,
        root,
        [training + [c for c, keep in zip(canaries, row, strict=True) if keep] for row in inside],
        public_pairs=public_pairs(params, attacker),  # as in `train_target`
    )
    labels = pair_labels(canaries)
    phi = []
    for t, system in enumerate(systems):
        system.reset_query_stream(seed * 1000 + t)
        ask = system_query_fn(system, root)
        repeats = ADAPTIVE_QUERIES if answers_vary(ask, canaries) else 1
        phi.append(logit_confidence(repeated_query(ask, repeats)(canaries), labels))
    phi_all = np.stack(phi)
    scores = np.stack(
        [
            likelihood_ratio(
                phi_all[np.arange(n_targets) != t],
                inside[np.arange(n_targets) != t],
                phi_all[t],
                None,
            )
            for t in range(n_targets)
        ]
    )
    result = _figures(inside, scores)
    kind_array = np.array(kinds)
    result["by_kind"] = {
        kind: _figures(inside[:, kind_array == kind], scores[:, kind_array == kind])
        for kind in KINDS
    }
    result |= {"n_canaries": len(canaries), "n_targets": n_targets, "seed": seed}
    return result


def _figures(inside: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    metrics = evaluate_scores(inside.ravel(), scores.ravel())
    return {key: metrics[key] for key in ("auc", "tpr_at_fpr", "advantage", "roc")}


def summarise_audits(audits: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sd over seeds of the audit figures, and the audits themselves."""
    return {
        "auc": mean_sd([a["auc"] for a in audits]),
        "tpr_at_fpr": {
            fpr: mean_sd([a["tpr_at_fpr"][fpr] for a in audits]) for fpr in audits[0]["tpr_at_fpr"]
        },
        "by_kind": {
            kind: {
                fpr: mean_sd([a["by_kind"][kind]["tpr_at_fpr"][fpr] for a in audits])
                for fpr in audits[0]["tpr_at_fpr"]
            }
            for kind in KINDS
        },
        "seeds": [a["seed"] for a in audits],
        "n_canaries": audits[0]["n_canaries"],
        "n_targets": audits[0]["n_targets"],
        "audits": audits,
    }


def audit_defenses(
    root: str | Path,
    protocol_for: Callable[[int], Mapping[str, Sequence[Pair]]],
    configurations: Sequence[tuple[Regime, Defense, Sequence[int]]],
    embedders: EmbedderPool,
    n_canaries: int = DEFAULT_CANARIES,
    n_targets: int = DEFAULT_TARGETS,
    progress: bool = True,
    workers: int = 1,
) -> dict[str, dict[str, dict[str, Any]]]:
    """`{regime: {defense: summarise_audits(...)}}` for each `(regime, defense, seeds)`,
    here with `embedders` or in `workers` processes."""
    jobs = [
        (root, protocol_for(seed), regime, defense, seed, n_canaries, n_targets)
        for regime, defense, seeds in configurations
        for seed in seeds
    ]
    labels = [f"{job[2].name}/{job[3].name}/seed{job[4]}" for job in jobs]
    bar = tqdm(total=len(jobs), desc="canaries", unit="audit", disable=not progress)
    try:
        if workers > 1:
            audits = run_jobs(_audit_job, jobs, workers, embedders.cache, bar, labels)
        else:
            audits = []
            for job, label in zip(jobs, labels, strict=True):
                bar.set_postfix_str(label)
                audits.append(_audit_job(embedders, *job))
                bar.update()
    finally:
        bar.close()
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for job, audit in zip(jobs, audits, strict=True):
        grouped.setdefault((job[2].name, job[3].name), []).append(audit)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for (regime, defense), found in grouped.items():
        results.setdefault(regime, {})[defense] = summarise_audits(found)
        log.info(
            "canaries %s/%s: TPR@1%%FPR %.3f, TPR@0.1%%FPR %.3f",
            regime,
            defense,
            results[regime][defense]["tpr_at_fpr"]["0.01"]["mean"],
            results[regime][defense]["tpr_at_fpr"]["0.001"]["mean"],
        )
    return results


def _audit_job(
    embedders: EmbedderPool,
    root: str | Path,
    protocol: Mapping[str, Sequence[Pair]],
    regime: Regime,
    defense: Defense,
    seed: int,
    n_canaries: int,
    n_targets: int,
) -> dict[str, Any]:
    embedder = embedders.get(defense.backbones)
    return canary_audit(root, protocol, regime, defense, embedder, seed, n_canaries, n_targets)


def canary_experiment(
    root: str | Path,
    protocol_for: Callable[[int], Mapping[str, Sequence[Pair]]],
    defenses: Sequence[str],
    regimes: Sequence[str],
    seeds: Sequence[int],
    n_canaries: int = DEFAULT_CANARIES,
    n_targets: int = DEFAULT_TARGETS,
    cache: EmbeddingCache | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """`facebone experiment canaries`: the audit of each defense in each regime over
    `seeds`; JSON-serialisable."""
    check_canary_options(n_canaries, n_targets)
    started = time.perf_counter()
    configurations = [
        (get_regime(r), get_defense(d), list(seeds))
        for r in dict.fromkeys(regimes)
        for d in dict.fromkeys(defenses)
    ]
    embedders = EmbedderPool(cache, progress)
    try:
        with torch_threads(1):
            canaries = audit_defenses(
                root, protocol_for, configurations, embedders, n_canaries, n_targets, progress
            )
    finally:
        embedders.close()
    return {
        "experiment": "canaries",
        "facebone_version": facebone.__version__,
        "data": str(root),
        "seeds": list(seeds),
        "canaries": canaries,
        "timings": {"total_s": time.perf_counter() - started},
    }
