"""Split-and-distill (after SELENA, Tang et al., USENIX Security 2022) for pair verifiers.

Membership leaks because the deployed model has seen each member pair. Here the members'
people are dealt to `shards` identity-disjoint shards and one teacher is trained per shard;
every pair of a larger distillation set (the members' pairs plus new pairs made from the
members' own images, `distill_factor` times as many in all) gets a soft label from the
teachers that never saw either of its people. Only the student trained on those soft labels
is deployed, so a member pair's answer comes from models that did not train on its people.
The student takes as many optimisation steps as the plain nn would (its epochs divided by
the distillation factor).

Shards are by identity, never by pair: a teacher that saw one pair of a person has seen that
person's face. The pairs of a shard are the members' pairs whose people are both in it; a
different-person pair that straddles two shards is re-paired inside one shard (one of its
images with another person of the same shard), so every shard keeps both kinds of pairs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facebone.data.pairs import Pair, pair_labels
from facebone.errors import FaceBoneError
from facebone.predictors import create_predictor

if TYPE_CHECKING:
    from facebone.system.fr_system import FRSystem

TEACHERS = ("cosine", "nn")


def check_split_distill_options(
    predictor: str, shards: object, teacher: object, distill_factor: object
) -> None:
    if predictor != "nn":
        raise FaceBoneError(f"split-distill distills into the nn predictor, not {predictor!r}")
    # With two shards a pair of people from both would have no teacher left to label it.
    if not isinstance(shards, int) or isinstance(shards, bool) or shards < 3:
        raise FaceBoneError(f"split-distill needs at least 3 shards, got {shards!r}")
    if teacher not in TEACHERS:
        raise FaceBoneError(f"unknown teacher {teacher!r}; choose one of {', '.join(TEACHERS)}")
    if not isinstance(distill_factor, int | float) or not 1 <= distill_factor <= 64:
        raise FaceBoneError(f"distill factor must be between 1 and 64, got {distill_factor!r}")


def person(image: str) -> str:
    """The person of an LFW-layout image path: its folder."""
    return image.replace("\\", "/").split("/", 1)[0]


def shard_people(pairs: Sequence[Pair], shards: int, rng: np.random.Generator) -> dict[str, int]:
    """Deal the people of `pairs` to shards at random, as evenly as possible: people with
    same-person pairs first, so every shard gets its share of them."""
    people = sorted({person(p) for pair in pairs for p in (pair.image1, pair.image2)})
    with_same = {person(pair.image1) for pair in pairs if pair.label == 1}
    order = [people[i] for i in rng.permutation(len(people))]
    order.sort(key=lambda who: who not in with_same)  # stable: random within each group
    return {who: rank % shards for rank, who in enumerate(order)}


def images_by_person(pairs: Sequence[Pair]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for pair in pairs:
        for image in (pair.image1, pair.image2):
            if image not in found[person(image)]:
                found[person(image)].append(image)
    return dict(sorted(found.items()))


def shard_pairs(
    pairs: Sequence[Pair], shard_of: dict[str, int], shards: int, rng: np.random.Generator
) -> list[list[Pair]]:
    """The training pairs of each shard (both people inside it); straddling different-person
    pairs are re-paired inside the shard of one of their images."""
    images = images_by_person(pairs)
    result: list[list[Pair]] = [[] for _ in range(shards)]
    for pair in pairs:
        first, second = shard_of[person(pair.image1)], shard_of[person(pair.image2)]
        if first == second:
            result[first].append(pair)
            continue
        keep = pair.image1 if rng.integers(2) == 0 else pair.image2
        shard = shard_of[person(keep)]
        others = [
            image
            for who, pool in images.items()
            if shard_of[who] == shard and who != person(keep)
            for image in pool
        ]
        if others:
            result[shard].append(Pair(keep, others[int(rng.integers(len(others)))], 0))
    return result


def distillation_pairs(
    pairs: Sequence[Pair], factor: float, rng: np.random.Generator
) -> list[Pair]:
    """The members' pairs plus new ones from their images, about `factor` times as many, half
    same-person (as far as people have several images) and half different-person."""
    images = images_by_person(pairs)
    target = round(factor * len(pairs))
    seen = {frozenset((p.image1, p.image2)) for p in pairs}
    result = list(pairs)
    same_pool = [
        (a, b) for pool in images.values() for i, a in enumerate(pool) for b in pool[i + 1 :]
    ]
    for index in rng.permutation(len(same_pool)):
        if len(result) >= (len(pairs) + target) // 2:
            break
        a, b = same_pool[index]
        if frozenset((a, b)) not in seen:
            seen.add(frozenset((a, b)))
            result.append(Pair(a, b, 1))
    flat = [image for pool in images.values() for image in pool]
    attempts = 0
    while len(result) < target and attempts < 20 * target:
        attempts += 1
        a, b = (flat[int(i)] for i in rng.integers(len(flat), size=2))
        if person(a) != person(b) and frozenset((a, b)) not in seen:
            seen.add(frozenset((a, b)))
            result.append(Pair(a, b, 0))
    return result


def fit_split_distill(
    systems: Sequence[FRSystem], root: str | Path, pair_sets: Sequence[Sequence[Pair]]
) -> list:
    """The distilled predictor of each system (teachers and students trained in batches)."""
    plans = []
    teachers, teacher_data = [], []
    for system, pairs in zip(systems, pair_sets, strict=True):
        rng = np.random.default_rng([system.seed, 2])
        shard_of = shard_people(pairs, system.shards, rng)
        shards = shard_pairs(pairs, shard_of, system.shards, rng)
        if any(len(set(pair_labels(s).tolist())) < 2 for s in shards):
            raise FaceBoneError(
                f"split-distill: a shard of {len(pairs)} training pairs lacks same-person or "
                f"different-person pairs; use fewer than {system.shards} shards"
            )
        for k, shard in enumerate(shards):
            teachers.append(_teacher(system, k))
            teacher_data.append(_all_backbone_rows(system, root, shard))
        plans.append((shard_of, distillation_pairs(pairs, system.distill_factor, rng)))
    teachers = type(teachers[0]).fit_many(teachers, teacher_data)
    students, student_data = [], []
    for index, (system, (shard_of, distill)) in enumerate(zip(systems, plans, strict=True)):
        own = teachers[index * system.shards : (index + 1) * system.shards]
        e1, e2, _, sources = _all_backbone_rows(system, root, distill)
        rows = np.repeat(np.arange(len(distill)), len(system.backbones))
        soft = _soft_labels(own, e1, e2, sources, [distill[i] for i in rows], shard_of)
        students.append(_student(system))
        student_data.append((e1, e2, soft, sources))
    return type(students[0]).fit_many(students, student_data)


def _student(system: FRSystem):
    """The deployed nn: trained for as many steps as the system's nn would take on the
    members' pairs alone (epochs divided by the distillation factor), so a larger
    distillation set buys smoother targets, not a longer run."""
    student = system._new_predictor()
    epochs = student.get_params()["epochs"]
    student.epochs = max(1, round(epochs / system.distill_factor))
    return student


def _teacher(system: FRSystem, shard: int):
    if system.teacher == "cosine":
        return create_predictor("cosine")
    params = {**system.predictor_params, "seed": system.seed * 1000 + shard + 1}
    return create_predictor("nn", **params)


def _all_backbone_rows(system: FRSystem, root: str | Path, pairs: Sequence[Pair]) -> tuple:
    """`(e1, e2, y, source)` with every pair through every backbone."""
    k = len(system.backbones)
    sources = np.tile(np.arange(k), len(pairs))
    rows = [pairs[i] for i in np.repeat(np.arange(len(pairs)), k)]
    e1, e2 = system._pair_embeddings(root, rows, sources)
    return e1, e2, pair_labels(rows), sources


def _soft_labels(
    teachers: Sequence,
    e1: np.ndarray,
    e2: np.ndarray,
    sources: np.ndarray,
    rows: Sequence[Pair],
    shard_of: dict[str, int],
) -> np.ndarray:
    """Mean answer of the teachers whose shard holds neither person of each row."""
    answers = np.stack([t.predict_proba(e1, e2, sources) for t in teachers])
    allowed = np.ones_like(answers, dtype=bool)
    for i, pair in enumerate(rows):
        for image in (pair.image1, pair.image2):
            allowed[shard_of[person(image)], i] = False
    return (answers * allowed).sum(0) / allowed.sum(0)
