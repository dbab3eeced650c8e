"""Run a study: splits -> embeddings (cached) -> each system -> utility -> each attack.

Every target (a system in a regime on a split seed) is one job: train it on the regime's
subset of target_train (the members), measure utility on target_test (the non-members), run
the membership attacks against it, grouped by their options so attacks that ask for the same
shadows share them, then the attacks of the other threat families (inversion, extraction,
attribute: `experiments.threats`), whose stolen store holds the target_test people's
templates. Its utility, attack and threat records are stored in one transaction as it
finishes; a rerun skips the targets already stored. Jobs are seeded on their own, so the
local and the Ray executor give the same numbers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from facebone.data.lfw import scan_lfw
from facebone.data.pairs import ROLES, Pair, make_protocol, read_pairs
from facebone.experiments.evaluation import AttackPlan, attack_target, train_target
from facebone.experiments.execution import EmbedderPool
from facebone.experiments.runner import check_protocol
from facebone.experiments.statistics import chance_band
from facebone.experiments.threats.base import ThreatContext, ThreatFigure, evaluate_threat
from facebone.studies.config import AttackSpec, StudyConfig, Target
from facebone.studies.executors import Executor
from facebone.studies.records import (
    AttackRecord,
    CellKey,
    ChanceBand,
    StudyRecords,
    SystemKey,
    ThreatKey,
    ThreatRecord,
    UtilityRecord,
    package_versions,
)
from facebone.studies.store import ResultStore

log = logging.getLogger(__name__)

# Images per embedding task: small enough that two workers share a cold cache's work.
EMBED_SHARD = 256


@dataclass(frozen=True)
class TargetJob:
    """Everything one target's job needs, sent whole to a worker."""

    root: str
    protocol: Mapping[str, Sequence[Pair]]
    target: Target
    attacks: tuple[AttackSpec, ...]
    config_hash: str


def attack_plans(attacks: Sequence[AttackSpec]) -> list[AttackPlan]:
    """The membership attacks grouped by their options, in the order first named."""
    groups: dict[tuple, list[str]] = {}
    for spec in (a for a in attacks if a.family == "membership"):
        groups.setdefault((spec.shadows, spec.queries, spec.levels), []).append(spec.name)
    return [
        AttackPlan(tuple(names), shadows, queries, levels)
        for (shadows, queries, levels), names in groups.items()
    ]


TargetRecords = tuple[UtilityRecord, list[AttackRecord], list[ThreatRecord]]


def run_target(embedders: EmbedderPool, job: TargetJob) -> TargetRecords:
    """Train, measure and attack one target; its records."""
    started = time.perf_counter()
    target, protocol = job.target, job.protocol
    regime, seed = target.regime, target.seed
    training = regime.training_pairs(protocol["target_train"], seed)
    test = protocol["target_test"]
    attacker = regime.attacker_pairs(protocol["attacker"], len(training), seed)
    params = target.system.defense.system_params(regime.nn_params, seed)
    embedder = embedders.get(params["backbones"])
    output = target.system.defense.output
    trained = train_target(params, embedder, job.root, training, test, attacker, seed, output)
    versions = package_versions()
    key = SystemKey(target.system.name, regime.name, seed)
    records = []
    for plan in attack_plans(job.attacks):
        results, seconds = attack_target(
            trained,
            embedder,
            job.root,
            attacker,
            training,
            test,
            plan,
            seed,
            identity_nonmembers=regime.training_pairs(test, seed),
        )
        for level in plan.levels:
            for name in results[level]:
                cell = CellKey(key.system, key.regime, name, level, seed)
                records.append(
                    attack_record(cell, results[level][name], seconds[name], job, versions)
                )
    context = ThreatContext(job.root, embedders, attacker, test, seed, embedders.cache)
    threats = [
        threat_record(key, spec.family, figure, job, versions)
        for spec in job.attacks
        if spec.family != "membership"
        for figure in evaluate_threat(spec.family, spec, trained, context)
    ]
    privacy = trained.privacy
    utility = UtilityRecord(
        key=key,
        params=trained.params,
        accuracy=trained.utility["accuracy"],
        auc=trained.utility["auc"],
        tar_at_far=dict(trained.utility["tar_at_far"]),
        train_accuracy=trained.train_accuracy,
        n_train=len(training),
        n_test=len(test),
        n_attacker=len(attacker),
        epsilon=privacy["epsilon"],
        delta=privacy["delta"],
        noise_multiplier=privacy["noise_multiplier"],
        train_s=trained.train_s,
        total_s=time.perf_counter() - started,
        config_hash=job.config_hash,
        versions=versions,
    )
    return utility, records, threats


def threat_record(
    key: SystemKey, family: str, figure: ThreatFigure, job: TargetJob, versions: Mapping[str, str]
) -> ThreatRecord:
    """The record of one threat attack's figure against the target `key`."""
    return ThreatRecord(
        key=ThreatKey(key.system, key.regime, family, figure.attack, figure.setting, key.seed),
        metric=figure.metric,
        value=figure.value,
        chance=figure.chance,
        goal=figure.goal,
        metrics=dict(figure.metrics),
        n_targets=figure.n_targets,
        seconds=figure.seconds,
        config_hash=job.config_hash,
        versions=dict(versions),
    )


def attack_record(
    key: CellKey,
    metrics: Mapping[str, Any],
    seconds: float,
    job: TargetJob,
    versions: Mapping[str, str],
) -> AttackRecord:
    """The record of one attack's `evaluate_scores` metrics, with the chance band of its
    member and non-member counts (one split, one test)."""
    chance = chance_band(metrics["n_members"], metrics["n_nonmembers"], 1, 1)
    return AttackRecord(
        key=key,
        auc=metrics["auc"],
        advantage=metrics["advantage"],
        balanced_accuracy=metrics["balanced_accuracy"],
        tpr_at_fpr=dict(metrics["tpr_at_fpr"]),
        roc_fpr=tuple(metrics["roc"]["fpr"]),
        roc_tpr=tuple(metrics["roc"]["tpr"]),
        shadows=metrics["shadows"],
        queries=metrics["queries"],
        n_members=metrics["n_members"],
        n_nonmembers=metrics["n_nonmembers"],
        chance=ChanceBand(chance["auc"], chance["tpr_at_fpr"]),
        threshold=metrics["threshold"],
        seconds=seconds,
        config_hash=job.config_hash,
        versions=dict(versions),
    )


def protocols(config: StudyConfig) -> dict[int, dict[str, list[Pair]]]:
    """The pair protocol of each split seed: made from the data folder with the seed, or the
    configured pair files (the same for every seed)."""
    files = config.splits.files
    if files is not None:
        fixed = {role: read_pairs(files[role], config.data).pairs for role in ROLES}
        made = {seed: fixed for seed in config.seeds()}
    else:
        images = scan_lfw(config.data)
        made = {
            seed: make_protocol(images, seed=seed, fractions=config.splits.fractions)
            for seed in config.seeds()
        }
    for protocol in made.values():
        check_protocol(protocol)
    return made


def _embed_shard(embedders: EmbedderPool, root: str, backbone: str, paths: list[str]) -> int:
    embedders.get([backbone]).dataset(root, paths)
    return len(paths)


def embed_all(
    config: StudyConfig,
    protocol_of: Mapping[int, Mapping[str, Sequence[Pair]]],
    executor: Executor,
    progress: bool,
) -> None:
    """Embed every image the protocols use with every backbone, in shards, into the cache
    (a warm cache makes this a look-up)."""
    paths = sorted(
        {
            path
            for protocol in protocol_of.values()
            for pairs in protocol.values()
            for pair in pairs
            for path in (pair.image1, pair.image2)
        }
    )
    jobs = [
        (str(config.data), backbone, paths[start : start + EMBED_SHARD])
        for backbone in config.backbones
        for start in range(0, len(paths), EMBED_SHARD)
    ]
    labels = [f"{backbone} {len(shard)} images" for _, backbone, shard in jobs]
    with tqdm(total=len(jobs), desc="embeddings", unit="shard", disable=not progress) as bar:
        executor.map(_embed_shard, jobs, labels, lambda index, count: None, bar)


def run_study(
    config: StudyConfig, executor: Executor, progress: bool = True, force: bool = False
) -> StudyRecords:
    """Run every target of `config` not yet in the store of its output folder, storing each
    as it finishes; the study's records (all of them, earlier runs' included). `force`
    starts a study in a folder that holds other files (`ResultStore.create`)."""
    store = ResultStore.create(config.output, config.describe(), config.text, force)
    finished = store.finished()
    targets = [
        target
        for target in config.targets()
        if SystemKey(target.system.name, target.regime.name, target.seed) not in finished
    ]
    if targets:
        protocol_of = protocols(config)
        embed_all(config, protocol_of, executor, progress)
        jobs = [
            (
                TargetJob(
                    str(config.data),
                    protocol_of[t.seed],
                    t,
                    config.attacks,
                    config.target_hash(t),
                ),
            )
            for t in targets
        ]
        labels = [f"{t.regime.name}/{t.system.name}/seed{t.seed}" for t in targets]

        def keep(index: int, result: TargetRecords) -> None:
            utility, attacks, threats = result
            store.add(utility, attacks, time.time(), threats)
            log.debug("%s: accuracy %.3f, stored", labels[index], utility.accuracy)

        with tqdm(
            total=len(config.targets()),
            initial=len(config.targets()) - len(targets),
            desc=f"study {config.name}",
            unit="target",
            disable=not progress,
        ) as bar:
            executor.map(run_target, jobs, labels, keep, bar)
    return store.records()
