"""What `facebone bench --gallery` measures, one figure per goal of the gallery (issue 17).

- `rank1_accuracy`: every LFW person gets one subject (their first photo, by sorted path);
  each further photo of the people with at least two is a probe; rank-1 is the share of probes
  whose most probable subject is their own (the threshold aside), `identified` the share that
  `identify` names right (at the gallery's open-set threshold). Singletons stay enrolled as
  distractors. A seeded sample of the probes when `probes` is given (encrypted search costs
  ~1 s a probe).
- `twin`: the same trained system (backbones, suppression, predictor, calibration) with its
  templates stored plain or CKKS-encrypted, so that plain and encrypted accuracy are compared
  on one system and the same probes: CKKS matches the unit templates' cosines, which the
  cosine predictor scores as it scores plain embeddings.
- `search_latency`: p50 and p95 of one identification (protect, search every backbone the
  query uses, calibrate) over a gallery of real LFW templates padded with synthetic Gaussian
  vectors of the same width, built directly in a fresh store; `build_s` is the first search's
  extra cost: reading the store and building the index (HNSW for `ann`).
- `enrolment_rate`: faces/s of batched enrolment (`batch.enroll_batch`) from photo files:
  reading, detecting, embedding (never cached) and the store's transactions.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebone.gallery.batch import BATCH_SIZE, Person, enroll_batch
from facebone.gallery.gallery import Enrolment, Gallery, _meta_for
from facebone.gallery.store import open_store
from facebone.protection import create_protection
from facebone.system.fr_system import FRSystem


@dataclass(frozen=True)
class Rank1:
    """1:N accuracy of one system on LFW (see the module docstring); `seed` draws the probe
    sample (None: every probe)."""

    protection: str | None
    subjects: int
    probes: int
    rank1: float
    identified: float
    seed: int | None


@dataclass(frozen=True)
class Latency:
    """Milliseconds per identification over `templates` templates (`kind`: exact, ann or
    encrypted), `queries` queries, seed `seed`."""

    kind: str
    templates: int
    queries: int
    p50_ms: float
    p95_ms: float
    build_s: float
    seed: int


@dataclass(frozen=True)
class EnrolmentRate:
    """Batched enrolment from photo files, embedding included."""

    protection: str | None
    faces: int
    people: int
    batch_size: int
    seconds: float
    faces_per_s: float


def twin(system: FRSystem, protection: str | None) -> FRSystem:
    """`system` with its templates stored plain (None) or CKKS-encrypted ("ckks"): itself when
    it already is; else a copy sharing everything trained, with fresh CKKS keys (or none)."""
    if system.template_protection == protection:
        return system
    made = copy.copy(system)
    made.template_protection = protection
    made.protections_ = {}
    if protection is not None:
        made.protections_ = {
            b.name: create_protection(protection, dim_in=b.embedding_dim).fit()
            for b in system.embedder_.backbones
        }
    return made


def _gallery(system: FRSystem, model_dir: str | Path, folder: str, **options) -> Gallery:
    """A new gallery of `system` (a twin too) in `folder`."""
    store = open_store(
        Path(folder) / "bench.sqlite", create=True, meta=_meta_for(system, model_dir)
    )
    return Gallery(store, system, **options)


def rank1_accuracy(
    system: FRSystem,
    model_dir: str | Path,
    embeddings: Mapping[str, Mapping[str, np.ndarray]],
    probes: int | None = None,
    seed: int = 0,
) -> Rank1:
    """Rank-1 of `system` with `embeddings` {backbone: {LFW path "Person/photo": embedding}};
    over a sample of `probes` probes drawn with `seed` (every probe when None)."""
    names = system.embedder_.names
    paths = sorted(next(iter(embeddings.values())))
    by_person: dict[str, list[str]] = {}
    for path in paths:
        by_person.setdefault(path.split("/")[0], []).append(path)
    first = [photos[0] for photos in by_person.values()]
    everyone = [(p, person) for person, ps in by_person.items() for p in ps[1:]]
    if probes is not None and probes < len(everyone):
        chosen = np.random.default_rng(seed).choice(len(everyone), probes, replace=False)
        everyone = [everyone[i] for i in sorted(chosen)]
    with tempfile.TemporaryDirectory() as folder, _gallery(system, model_dir, folder) as gallery:
        subjects = gallery.enroll_many(
            [Enrolment({n: embeddings[n][p][None] for n in names}, [p]) for p in first]
        )
        own = dict(zip(by_person, subjects, strict=True))
        best = right = 0
        for path, person in everyone:
            found, clears = gallery.best_subject_embeddings({n: embeddings[n][path] for n in names})
            best += found == own[person]
            right += found == own[person] and clears
    return Rank1(
        system.template_protection,
        len(first),
        len(everyone),
        best / len(everyone),
        right / len(everyone),
        None if probes is None else seed,
    )


def search_latency(
    system: FRSystem,
    model_dir: str | Path,
    real: Mapping[str, np.ndarray],
    templates: int,
    approximate: bool | None,
    queries: int = 200,
    seed: int = 0,
) -> Latency:
    """Identification latency over `templates` faces: the `real` embeddings {backbone: (R,
    D)} (rows of the same photos) and Gaussian vectors for the rest; probes are real
    embeddings with Gaussian noise (a new photo of an enrolled face)."""
    rng = np.random.default_rng(seed)
    names = system.embedder_.names
    count = min(templates, min(len(r) for r in real.values()))
    padded = {
        n: np.concatenate(
            [
                np.asarray(real[n][:count], dtype=np.float32),
                rng.standard_normal((templates - count, real[n].shape[1])).astype(np.float32),
            ]
        )
        for n in names
    }
    asked = rng.integers(count, size=queries)
    probes = {
        n: padded[n][asked]
        + 0.1 * np.std(padded[n][:count]) * rng.standard_normal((queries, padded[n].shape[1]))
        for n in names
    }
    with (
        tempfile.TemporaryDirectory() as folder,
        _gallery(system, model_dir, folder, approximate=approximate) as gallery,
    ):
        chunk = 4096 if gallery.encrypted else 20_000
        for start in range(0, templates, chunk):
            stop = min(start + chunk, templates)
            gallery.enroll_many(
                [
                    Enrolment({n: padded[n][i][None] for n in names}, [f"{i}"])
                    for i in range(start, stop)
                ]
            )
        # A fresh object, as a restarted server: its first search reads the store and
        # builds the index.
        reopened = Gallery(open_store(Path(folder) / "bench.sqlite"), system, approximate)
        with reopened:
            began = time.perf_counter()
            reopened.identify_embeddings({n: probes[n][0] for n in names})
            build = time.perf_counter() - began
            times = []
            for q in range(queries):
                began = time.perf_counter()
                reopened.identify_embeddings({n: probes[n][q] for n in names})
                times.append((time.perf_counter() - began) * 1000)
        encrypted = gallery.encrypted
    kind = "encrypted" if encrypted else ("ann" if approximate else "exact")
    return Latency(
        kind,
        templates,
        queries,
        float(np.percentile(times, 50)),
        float(np.percentile(times, 95)),
        build,
        seed,
    )


def enrolment_rate(
    system: FRSystem,
    model_dir: str | Path,
    root: str | Path,
    paths: Sequence[str],
    batch_size: int = BATCH_SIZE,
) -> EnrolmentRate:
    """Faces/s enrolling the LFW photos `paths` (each person one subject) from their files,
    `batch_size` people per transaction, into a new gallery."""
    by_person: dict[str, list[Path]] = {}
    for path in paths:
        by_person.setdefault(path.split("/")[0], []).append(Path(root) / path)
    people = [Person(key, tuple(photos)) for key, photos in by_person.items()]
    with tempfile.TemporaryDirectory() as folder, _gallery(system, model_dir, folder) as gallery:
        gallery.enrolments([people[0].photos[:1]], convert_color=True)  # models load on first use
        began = time.perf_counter()
        enroll_batch(gallery, people, batch_size, convert_color=True)
        seconds = time.perf_counter() - began
    return EnrolmentRate(
        system.template_protection,
        len(paths),
        len(people),
        batch_size,
        seconds,
        len(paths) / seconds,
    )
