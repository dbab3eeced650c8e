"""Throughput of each backbone on this machine: end to end and model only.

Timing belongs here, not in tests: `facebone bench` prints what the README reports.
"""

import time
from pathlib import Path

import numpy as np

from facebone.backbones import Backbone, create_backbone
from facebone.embeddings import embed_images
from facebone.faces.detect import FaceDetector, find_face
from facebone.faces.image import load_image


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
