"""Throughput of each backbone on this machine: end to end and model only.

Timing belongs here, not in tests: `facebone bench` prints what the README reports.
"""

import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from facebone.backbones import Backbone, create_backbone
from facebone.data.pairs import Pair, pair_labels
from facebone.embeddings import EmbeddingCache, embed_images
from facebone.embeddings.embedder import Embedder
from facebone.errors import FaceBoneError
from facebone.faces.detect import FaceDetector, find_face
from facebone.faces.image import load_image
from facebone.metrics import verification_metrics
from facebone.system import FRSystem


def bench_backbone(
    backbone: Backbone, root: Path, paths: list[str], detector: FaceDetector
) -> dict[str, float]:
    """Images per second, end to end (read, decode, detect, align, embed; no cache) and
    model only (aligned crops prepared beforehand)."""
    embed_images(root, paths[: backbone.batch_size * 2], [backbone], None, detector, progress=False)
    start = time.perf_counter()
    embed_images(root, paths, [backbone], None, detector, progress=False)
    end_to_end = len(paths) / (time.perf_counter() - start)
    crops = [_crop(backbone, detector, root / path) for path in paths]
    start = time.perf_counter()
    for begin in range(0, len(crops), backbone.batch_size):
        backbone.embed(crops[begin : begin + backbone.batch_size])
    model_only = len(crops) / (time.perf_counter() - start)
    return {
        "end_to_end_images_per_s": round(end_to_end, 1),
        "model_images_per_s": round(model_only, 1),
        "batch_size": backbone.batch_size,
        "images": len(paths),
    }


def bench_sface_onnxruntime(root: Path, paths: list[str], detector: FaceDetector) -> float:
    """Model-only speed of SFace under onnxruntime, the runtime SFace does not use by default."""
    backbone = create_backbone("sface", runtime="onnxruntime")
    crops = [_crop(backbone, detector, root / path) for path in paths]
    backbone.embed(crops[: backbone.batch_size])
    start = time.perf_counter()
    backbone.embed(crops)
    return round(len(crops) / (time.perf_counter() - start), 1)


def _crop(backbone: Backbone, detector: FaceDetector, path: Path) -> np.ndarray:
    image = load_image(path, convert_color=True)
    return backbone.align(image, find_face(detector, image, str(path), fallback=True))


def bench_verify(system: FRSystem, root: Path, paths: list[str], repeats: int = 20) -> dict:
    """Latency of `verify` on pairs of photos the system has not seen before, in ms, overall
    and by the backbone that answered (a multi-backbone system draws one per query, so the
    overall median depends on the draws)."""
    pairs = list(zip(paths[0::2], paths[1::2], strict=False))[: repeats + 1]
    system.embedder_.warm_up()
    system.verify(root / pairs[0][0], root / pairs[0][1])
    timings, by_backbone = [], {}
    for first, second in pairs[1:]:
        start = time.perf_counter()
        answer = system.verify(root / first, root / second)
        timings.append((time.perf_counter() - start) * 1000)
        by_backbone.setdefault(answer.backbone, []).append(timings[-1])
    return {
        "median_ms": round(float(np.median(timings)), 1),
        "p95_ms": round(float(np.percentile(timings, 95)), 1),
        "median_ms_by_backbone": {
            name: round(float(np.median(values)), 1) for name, values in by_backbone.items()
        },
        "pairs": len(timings),
        "backbones": list(system.backbones),
    }


def bench_startup(runs: int) -> dict:
    """`facebone --help` in a fresh interpreter: what every command pays before it starts."""
    timings = [_run_facebone(["--help"]) for _ in range(runs)]
    return {"median_ms": round(statistics.median(timings)), "runs": runs}


def bench_cli_verify(model: Path, root: Path, paths: list[str], runs: int) -> dict:
    """`facebone verify` of two new photos, end to end in a fresh process each time: start-up,
    model load, detection and embedding of both photos."""
    pairs = list(zip(paths[0::2], paths[1::2], strict=False))[:runs]
    timings = [
        _run_facebone(["verify", str(root / first), str(root / second), "--model", str(model)])
        for first, second in pairs
    ]
    return {"median_ms": round(statistics.median(timings)), "runs": len(timings)}


def _run_facebone(argv: list[str]) -> float:
    """Milliseconds `python -m facebone ARGV` takes; a failure is an error with its message."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "facebone", *argv], capture_output=True, text=True, check=False
    )
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise FaceBoneError(f"facebone {argv[0]} failed while timing it: {last}")
    return elapsed


def bench_train_evaluate(
    specs: list[str], root: Path, train: list[Pair], test: list[Pair], cache: EmbeddingCache
) -> dict:
    """Wall time of training and evaluating a system whose embeddings are cached."""
    start = time.perf_counter()
    embedder = Embedder(specs, cache, progress=False)
    mitigation = "multi" if len(specs) > 1 else "none"
    system = FRSystem(backbones=specs, mitigation=mitigation).fit(embedder, root, train)
    metrics = verification_metrics(pair_labels(test), system.predict_proba(root, test))
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "accuracy": round(metrics["accuracy"], 4),
        "train_pairs": len(train),
        "test_pairs": len(test),
        "backbones": specs,
    }


def bench_shadows(
    root: Path, train: list[Pair], cache: EmbeddingCache, n_shadows: int = 64, one_by_one: int = 4
) -> dict:
    """Shadow systems trained per second (SFace + nn), `n_shadows` at once through
    `FRSystem.fit_many` and `one_by_one` one after the other, in both regimes' recipes:
    leaking (100 pairs, 300 epochs, no weight decay) and default (all pairs, 60 epochs)."""
    from facebone.experiments.execution import torch_threads
    from facebone.experiments.regimes import get_regime

    embedder = Embedder(["sface"], cache, progress=False)
    results = {}
    try:
        with torch_threads(1):
            for name in ("leaking", "default"):
                regime = get_regime(name)
                pairs = regime.training_pairs(train, 0)
                params = {"backbones": ["sface"], "predictor_params": dict(regime.nn_params)}
                embedder.dataset(root, [i for p in pairs for i in (p.image1, p.image2)])
                start = time.perf_counter()
                systems = [FRSystem(**params, seed=s) for s in range(n_shadows)]
                FRSystem.fit_many(systems, embedder, root, [pairs] * n_shadows)
                batched = n_shadows / (time.perf_counter() - start)
                start = time.perf_counter()
                for seed in range(one_by_one):
                    FRSystem(**params, seed=seed).fit(embedder, root, pairs)
                single = one_by_one / (time.perf_counter() - start)
                results[name] = {
                    "train_pairs": len(pairs),
                    "batched_per_s": round(batched, 2),
                    "one_by_one_per_s": round(single, 2),
                    "shadows": n_shadows,
                }
    finally:
        embedder.close()
    return results
