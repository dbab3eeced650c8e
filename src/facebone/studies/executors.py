"""Where a study's jobs run: here or in local worker processes (`LocalExecutor`), or as Ray
tasks on a local Ray instance or a cluster (`RayExecutor`).

A job is `function(embedders, *job)` with a module-level `function` (the shape of
`experiments.execution.run_jobs`): each seeds its own randomness, so its result is the same on
every executor and in any order. Each worker keeps one `EmbedderPool` for all its jobs.
On a cluster every node must see the data folder and the embedding cache at the same paths.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from tqdm import tqdm

from facebone.embeddings.cache import EmbeddingCache
from facebone.errors import FaceBoneError
from facebone.experiments.execution import EmbedderPool, run_jobs, torch_threads
from facebone.processes import watch_parent

log = logging.getLogger(__name__)

OnDone = Callable[[int, Any], None]


class Executor(Protocol):
    """Runs jobs, calling `on_done(index, result)` in this process as each finishes."""

    name: str

    def map(
        self,
        function: Callable[..., Any],
        jobs: Sequence[tuple],
        labels: Sequence[str],
        on_done: OnDone,
        bar: tqdm,
    ) -> None: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Jobs in this process (`workers=1`: embedders shared, one torch thread) or in `workers`
    spawned processes."""

    name = "local"

    def __init__(self, cache: EmbeddingCache | None = None, workers: int = 1) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise FaceBoneError(f"workers must be 1 or more, got {workers!r}")
        self.cache = cache
        self.workers = workers
        self._pool: EmbedderPool | None = None

    def map(
        self,
        function: Callable[..., Any],
        jobs: Sequence[tuple],
        labels: Sequence[str],
        on_done: OnDone,
        bar: tqdm,
    ) -> None:
        if self.workers > 1:
            run_jobs(function, jobs, self.workers, self.cache, bar, labels, on_done)
            return
        if self._pool is None:
            self._pool = EmbedderPool(self.cache, progress=False)
        with torch_threads(1):
            for index, job in enumerate(jobs):
                bar.set_postfix_str(labels[index])
                on_done(index, function(self._pool, *job))
                bar.update()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


# One embedder pool per Ray worker process, kept between the tasks it runs.
_RAY_WORKER: dict[str, Any] = {}


def _ray_task(function: Callable[..., Any], cache: EmbeddingCache | None, job: tuple) -> Any:
    import torch

    if "embedders" not in _RAY_WORKER:
        # A Ray worker is a child of its node's raylet: it ends when that does. A local
        # instance's raylet is itself killed with this command (Ray's own parent-death
        # signal), so a killed study leaves no workers behind.
        watch_parent()
        torch.set_num_threads(1)  # as the local workers: one thread per task, figures alike
        _RAY_WORKER["embedders"] = EmbedderPool(cache, progress=False)
    return function(_RAY_WORKER["embedders"], *job)


class RayExecutor:
    """Jobs as Ray tasks of one CPU each: on the cluster at `address` (`ray.init(address=...)`,
    e.g. "auto" or "ray://host:10001"), else on a local Ray instance of `num_cpus` CPUs."""

    name = "ray"

    def __init__(
        self,
        cache: EmbeddingCache | None = None,
        address: str | None = None,
        num_cpus: int | None = 2,
    ) -> None:
        self.cache = cache
        self.address = address
        self.num_cpus = num_cpus
        self._started = False

    def _start(self) -> Any:
        import ray

        if not ray.is_initialized():
            try:
                if self.address is not None:
                    ray.init(address=self.address, log_to_driver=False)
                else:
                    ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as error:
                where = self.address or "a local instance"
                raise FaceBoneError(f"cannot start Ray on {where}: {error}") from None
            self._started = True
        return ray

    def map(
        self,
        function: Callable[..., Any],
        jobs: Sequence[tuple],
        labels: Sequence[str],
        on_done: OnDone,
        bar: tqdm,
    ) -> None:
        ray = self._start()
        task = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
        pending = {task.remote(function, self.cache, job): i for i, job in enumerate(jobs)}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                index = pending.pop(done[0])
                on_done(index, ray.get(done[0]))
                bar.set_postfix_str(labels[index])
                bar.update()
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


def create_executor(
    name: str, cache: EmbeddingCache | None, address: str | None = None, workers: int = 1
) -> LocalExecutor | RayExecutor:
    """The executor the CLI names: "local" (with `workers` processes) or "ray" (at
    `address`, else a local instance with `workers` CPUs, at least 2)."""
    if name == "local":
        if address is not None:
            raise FaceBoneError("an address is for the ray executor only")
        return LocalExecutor(cache, workers)
    if name == "ray":
        return RayExecutor(cache, address, None if address else max(workers, 2))
    raise FaceBoneError(f"unknown executor {name!r}; choose from: local, ray")
