"""`facebone serve` as a child process on 127.0.0.1, for the benchmark and the tests.

A server in its own process measures what a client sees: its work does not share the
client's interpreter lock. The child dies with its parent, however the parent ends: on Linux
the kernel sends it SIGTERM when the parent is gone (`prctl(PR_SET_PDEATHSIG)`), which a
`kill -9` of the parent cannot skip. (The kernel ties it to the parent thread that started
the child: enter and leave `server_process` on one thread.)
"""

import ctypes
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from facebone.errors import FaceBoneError

READY_PREFIX = "serving on "
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ServerProcess:
    """A running `facebone serve`: its base `url`, its `process`, and its stderr so far."""

    url: str
    process: subprocess.Popen
    errors: IO[str]

    def log(self) -> str:
        """What the server has written to stderr so far."""
        self.errors.seek(0)
        return self.errors.read()


def _die_with_parent() -> Callable[[], None] | None:
    """What the child runs before `exec` (None off Linux): ask the kernel for SIGTERM when
    this process ends, and end at once if it has already. libc is looked up here, in the
    parent: a child forked from threads may only call what is loaded already."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def set_signal() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return set_signal


@contextmanager
def server_process(
    model: str | Path, extra_args: Sequence[str] = (), timeout: float = 120.0
) -> Iterator[ServerProcess]:
    """Start `facebone serve --model MODEL --port 0`; stop it on exit (SIGTERM, then SIGKILL
    if it has not stopped within 15 s)."""
    command = [sys.executable, "-m", "facebone", "serve", "--model", str(model), "--port", "0"]
    with tempfile.TemporaryFile(mode="w+") as errors:
        process = subprocess.Popen(
            [*command, *extra_args],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            preexec_fn=_die_with_parent(),
        )
        try:
            yield ServerProcess(_wait_ready(process, errors, timeout), process, errors)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()


@contextmanager
def running_server(
    model: str | Path, extra_args: Sequence[str] = (), timeout: float = 120.0
) -> Iterator[str]:
    """`server_process`, giving only the server's base URL."""
    with server_process(model, extra_args, timeout) as server:
        yield server.url


def _wait_ready(process: subprocess.Popen, errors: IO[str], timeout: float) -> str:
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
