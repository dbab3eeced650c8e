"""dlib's ResNet face descriptor (128-d), files shipped in `face-recognition-models`.

dlib aligns with its own 5-point shape predictor and `get_face_chip` (150x150, padding 0.25),
so this backbone overrides `align`. The prebuilt `dlib-bin` wheel runs the network on one core
(~9 faces/s), so batches are spread over a pool of worker processes, created once with the
backbone and reused for every batch. Each worker watches its parent and exits when it is gone
(`processes.watch_parent`), so a `kill -9` of the command never leaves ~500 MB workers behind.
"""

import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import dlib
import numpy as np

from facebone.assets import dlib_landmarks5_path, dlib_resnet_path, file_sha256
from facebone.backbones.base import Backbone
from facebone.backbones.registry import register_backbone
from facebone.faces.detect import Face
from facebone.processes import watch_parent

CHIP_SIZE = 150
CHIP_PADDING = 0.25

_worker_model: "dlib.face_recognition_model_v1 | None" = None


def _load_worker_model() -> None:
    global _worker_model
    _worker_model = dlib.face_recognition_model_v1(str(dlib_resnet_path()))


def _start_worker(parent: int) -> None:
    """Worker initializer: exit as soon as the parent dies (the pool may be started from a
    short-lived thread, so the parent is watched, not signalled), then load the model."""
    watch_parent(parent)
    _load_worker_model()


def _ping(_: int) -> None:
    """A task that only makes sure a worker has started (its initializer loads the model)."""
    time.sleep(0.05)  # long enough that each worker takes one


def _embed_chips(chips: list[np.ndarray]) -> np.ndarray:
    if _worker_model is None:
        _load_worker_model()
    return np.asarray(_worker_model.compute_face_descriptor(chips), dtype=np.float32)


class DlibResNet(Backbone):
    name = "dlib"
    embedding_dim = 128
    input_size = CHIP_SIZE

    def __init__(self, workers: int | None = None, batch_size: int = 8) -> None:
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self.batch_size = batch_size
        self.weights_id = file_sha256(dlib_resnet_path())
        self._landmarks = dlib.shape_predictor(str(dlib_landmarks5_path()))
        self._pool: ProcessPoolExecutor | None = None

    def align(self, image: np.ndarray, face: Face) -> np.ndarray:
        x, y, w, h = (float(v) for v in face.box)
        rect = dlib.rectangle(round(x), round(y), round(x + w), round(y + h))
        shape = self._landmarks(image, rect)
        return dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)

    def embed(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        chips = [np.ascontiguousarray(face, dtype=np.uint8) for face in faces]
        if not chips:
            return np.empty((0, self.embedding_dim), dtype=np.float32)
        # A cold pool costs more to start than a few chips take here; a warm one (see
        # `warm_up`) is worth it from two chips on, e.g. the two photos of a verification.
        smallest = 2 if self._pool is not None else 2 * self.workers
        if self.workers <= 1 or len(chips) < smallest:
            return _embed_chips(chips)
        size = -(-len(chips) // self.workers)
        parts = [chips[start : start + size] for start in range(0, len(chips), size)]
        return np.concatenate(list(self._worker_pool().map(_embed_chips, parts)))

    def warm_up(self) -> None:
        """Start the workers and load the model in each, so no query waits for it."""
        if self.workers > 1:
            pool = self._worker_pool()
            list(pool.map(_ping, range(self.workers)))

    def _worker_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # fork, not spawn: spawn re-imports the caller's main script, which breaks scripts
            # without a __main__ guard. Workers only run dlib, so the parent's OpenCV and torch
            # threads, which fork does not copy, are never needed there.
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_start_worker,
                initargs=(os.getpid(),),
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


@register_backbone("dlib")
def dlib_resnet(workers: int | None = None, batch_size: int = 8) -> DlibResNet:
    return DlibResNet(workers=workers, batch_size=batch_size)
