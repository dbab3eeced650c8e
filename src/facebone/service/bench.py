"""What `facebone bench --serve` measures: the REST API as a client on this machine sees it.

The server is `facebone serve` in its own process on 127.0.0.1. Every request sends two photos
the server has not seen before; the first few requests only warm it up. The number of
requests is fixed, so the run always ends.
"""

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from facebone.errors import FaceBoneError
from facebone.faces.image import read_image_bytes
from facebone.service.process import running_server

WARM_UP = 5

# httpx logs every request at INFO; a benchmark of hundreds would bury its own result.
logging.getLogger("httpx").setLevel(logging.WARNING)


def bench_serve(
    model: Path, root: Path, paths: list[str], requests: int = 50, clients: int = 8
) -> dict:
    """Sequential latency of POST /verify over `requests` requests, then throughput of
    `clients` concurrent clients sending `requests` more, each photo used once."""
    needed = 2 * (WARM_UP + 2 * requests)
    if len(paths) < needed:
        raise FaceBoneError(
            f"the server benchmark needs {needed} images, the data has {len(paths)}"
        )
    photos = [read_image_bytes(root / path) for path in paths[:needed]]
    pairs = list(zip(photos[0::2], photos[1::2], strict=True))
    warm, sequential, loaded = (
        pairs[:WARM_UP],
        pairs[WARM_UP : WARM_UP + requests],
        pairs[WARM_UP + requests :],
    )
    with running_server(model) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            model = client.get("/healthz").json()["model"]
            for pair in warm:
                _post(client, pair)
            answers = [_post(client, pair) for pair in sequential]
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            shares = [loaded[index::clients] for index in range(clients)]
            per_client = list(pool.map(lambda share: _client_run(url, share), shares))
        loaded_answers = [answer for answers in per_client for answer in answers]
        wall = time.perf_counter() - start
    return {
        "latency": _summary(answers),
        "throughput": {
            **_summary(loaded_answers),
            "clients": clients,
            "requests_per_s": round(len(loaded) / wall, 1),
        },
        "model": model,
        "cpus": os.cpu_count(),
    }


def _post(client: httpx.Client, pair: tuple[bytes, bytes]) -> tuple[float, float | None]:
    """(round-trip ms, the server's own time_ms or None when the request failed)."""
    start = time.perf_counter()
    response = client.post("/verify", files={"img1": pair[0], "img2": pair[1]})
    elapsed = (time.perf_counter() - start) * 1000
    return elapsed, response.json()["time_ms"] if response.status_code == 200 else None


def _client_run(url: str, pairs: list[tuple[bytes, bytes]]) -> list[tuple[float, float | None]]:
    """One client on its own connection, one request after another."""
    with httpx.Client(base_url=url, timeout=30) as client:
        return [_post(client, pair) for pair in pairs]


def _summary(answers: list[tuple[float, float | None]]) -> dict:
    round_trips = np.array([ms for ms, _ in answers])
    server = [ms for _, ms in answers if ms is not None]
    return {
        "requests": len(answers),
        "failed": len(answers) - len(server),
        "median_ms": round(float(np.median(round_trips)), 1),
        "p95_ms": round(float(np.percentile(round_trips, 95)), 1),
        "server_median_ms": round(float(np.median(server)), 1) if server else None,
    }
