"""Where experiment work runs: one process with shared embedders, or several worker
processes, each with its own embedders, that run independent seeded jobs side by side.

Every job (a target trained and attacked, a canary audit) is seeded on its own, so its
figures are the same wherever and in whichever order it runs.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from typing import Any

import torch
from tqdm import tqdm

from facebone.embeddings.cache import EmbeddingCache
from facebone.embeddings.embedder import Embedder
from facebone.processes import watch_parent


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


_WORKER: dict[str, EmbedderPool] = {}


def _start_worker(cache: EmbeddingCache | None, parent: int) -> None:
    # A killed command must not leave its workers (about 500 MB each) running.
    watch_parent(parent)
    torch.set_num_threads(1)
    _WORKER["embedders"] = EmbedderPool(cache, progress=False)
    # Close the backbones (dlib's own worker processes) before this process waits for its
    # children at exit; a positive priority runs before that wait.
    multiprocessing.util.Finalize(None, _WORKER["embedders"].close, exitpriority=10)


def _run_in_worker(function: Callable[..., Any], job: tuple) -> Any:
    return function(_WORKER["embedders"], *job)


def run_jobs(
    function: Callable[..., Any],
    jobs: Sequence[tuple],
    workers: int,
    cache: EmbeddingCache | None,
    bar: tqdm,
    labels: Sequence[str],
    on_done: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """`function(embedders, *job)` for each job in `workers` spawned processes (`function`
    must be importable: a module-level function); results in the order of `jobs`, the bar
    advanced and `on_done(index, result)` called as each finishes (so a store can keep it
    before the others end)."""
    context = multiprocessing.get_context("spawn")
    results: list[Any] = [None] * len(jobs)
    with ProcessPoolExecutor(workers, context, _start_worker, (cache, os.getpid())) as executor:
        futures = {
            executor.submit(_run_in_worker, function, job): index for index, job in enumerate(jobs)
        }
        for future in as_completed(futures):
            index = futures[future]
            results[index] = future.result()
            if on_done is not None:
                on_done(index, results[index])
            bar.set_postfix_str(labels[index])
            bar.update()
    return results
