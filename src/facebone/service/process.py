"""`facebone serve` as a child process on 127.0.0.1, for the benchmark and the tests.

A server in its own process measures what a client sees: its work does not share the
client's interpreter lock.
"""

import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from facebone.errors import FaceBoneError

READY_PREFIX = "serving on "


@contextmanager
def running_server(
    model: str | Path, extra_args: Sequence[str] = (), timeout: float = 120.0
) -> Iterator[str]:
    """Start `facebone serve --model MODEL --port 0`, yield its base URL, stop it on exit."""
    command = [sys.executable, "-m", "facebone", "serve", "--model", str(model), "--port", "0"]
    with tempfile.TemporaryFile(mode="w+") as errors:
        process = subprocess.Popen(
            [*command, *extra_args], stdout=subprocess.PIPE, stderr=errors, text=True
        )
        try:
            yield _wait_ready(process, errors, timeout)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()


def _wait_ready(process: subprocess.Popen, errors, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([process.stdout], [], [], 0.2)
        if readable:
            line = process.stdout.readline()
            if line.startswith(READY_PREFIX):
                return line[len(READY_PREFIX) :].split()[0]
        if process.poll() is not None:
            errors.seek(0)
            tail = " ".join(errors.read().strip().splitlines()[-1:])
            raise FaceBoneError(f"the server did not start: {tail or 'no message'}")
    raise FaceBoneError(f"the server did not start within {timeout:.0f} s")
