"""What `facebone bench --gallery` measures: 1:N accuracy on LFW and search latency at scale.

- `rank1_accuracy`: every LFW person gets one subject (their first photo, by sorted path);
  each further photo of the people with at least two is a probe; rank-1 is the share of probes
  whose most probable subject is their own (the threshold aside), `identified` the share that
  `identify` names right (at the threshold). Singletons stay enrolled as distractors.
- `search_latency`: p95 of one identification (protect, search, calibrate) over a gallery of
  real LFW templates padded with synthetic Gaussian vectors of the same width, built directly
  in a fresh store in one transaction.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebone.gallery.gallery import Enrolment, Gallery
from facebone.system.fr_system import THRESHOLD, FRSystem


@dataclass(frozen=True)
class Rank1:
    """1:N accuracy of one system on LFW (see the module docstring)."""

    protection: str | None
    subjects: int
    probes: int
    rank1: float
    identified: float


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


def rank1_accuracy(
    system: FRSystem, model_dir: str | Path, embeddings: Mapping[str, Mapping[str, np.ndarray]]
) -> Rank1:
    """Rank-1 of `system` with `embeddings` {backbone: {LFW path "Person/photo": embedding}}."""
    names = system.embedder_.names
    paths = sorted(next(iter(embeddings.values())))
    by_person: dict[str, list[str]] = {}
    for path in paths:
        by_person.setdefault(path.split("/")[0], []).append(path)
    first = [photos[0] for photos in by_person.values()]
    with (
        tempfile.TemporaryDirectory() as folder,
        Gallery.create(Path(folder) / "rank1.sqlite", system, model_dir) as gallery,
    ):
        subjects = gallery.enroll_many(
            [Enrolment({n: embeddings[n][p][None] for n in names}, [p]) for p in first]
        )
        own = dict(zip(by_person, subjects, strict=True))
        probes = [(p, own[person]) for person, ps in by_person.items() for p in ps[1:]]
        best = right = 0
        for path, subject in probes:
            sources = system._query_sources(1)
            found, probability, _ = gallery._best(sources, {n: embeddings[n][path] for n in names})
            best += found == subject
            right += found == subject and probability >= THRESHOLD
    return Rank1(
        system.template_protection, len(first), len(probes), best / len(probes), right / len(probes)
    )


def search_latency(
    system: FRSystem,
    model_dir: str | Path,
    real: np.ndarray,
    templates: int,
    approximate: bool | None,
    queries: int = 200,
    seed: int = 0,
) -> Latency:
    """Identification latency over `templates` faces of the system's first backbone: the
    `real` embeddings (R, D) and Gaussian vectors for the rest; probes are real embeddings
    with Gaussian noise (a new photo of an enrolled face)."""
    rng = np.random.default_rng(seed)
    name = system.embedder_.names[0]
    real = np.asarray(real, dtype=np.float32)[:templates]
    synthetic = rng.standard_normal((templates - len(real), real.shape[1])).astype(np.float32)
    gallery_embeddings = np.concatenate([real, synthetic])
    with tempfile.TemporaryDirectory() as folder:
        gallery = Gallery.create(
            Path(folder) / "bench.sqlite", system, model_dir, approximate=approximate
        )
        with gallery:
            chunk = 4096 if gallery.encrypted else 20_000
            for start in range(0, templates, chunk):
                rows = gallery_embeddings[start : start + chunk]
                gallery.enroll_many(
                    [Enrolment({name: row[None]}, [f"{start + i}"]) for i, row in enumerate(rows)]
                )
            began = time.perf_counter()
            probes = real[rng.integers(len(real), size=queries)]
            probes = probes + 0.1 * np.std(real) * rng.standard_normal(probes.shape).astype(
                np.float32
            )
            gallery.identify_embeddings({name: probes[0]})  # builds the index
            build = time.perf_counter() - began
            times = []
            for probe in probes:
                began = time.perf_counter()
                gallery.identify_embeddings({name: probe})
                times.append((time.perf_counter() - began) * 1000)
    kind = "encrypted" if gallery.encrypted else ("ann" if approximate else "exact")
    return Latency(
        kind,
        templates,
        queries,
        float(np.percentile(times, 50)),
        float(np.percentile(times, 95)),
        build,
        seed,
    )
