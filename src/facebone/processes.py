"""Child processes die with their parent: a `kill -9` or SIGTERM of a command never leaves
worker processes (about 500 MB each) or a web server running.

Two ways in, one for each kind of child:

- `watch_parent()`, called in a Python worker that FaceBone starts (dlib's pool, a study's
  pool, a Ray worker): a thread polls the parent's id and ends the process once it changes.
  It works whatever killed the parent and whichever of its threads started the worker.
- `dies_with_parent()`, the `preexec_fn` of a program FaceBone runs whose code is not its
  own (Streamlit): Linux's parent-death signal, set between fork and exec. That signal fires
  when the parent *thread* that forked ends, so start such a child from the main thread.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

# How often a worker checks that its parent is alive, in seconds.
PARENT_CHECK_INTERVAL = 0.5
_PR_SET_PDEATHSIG = 1


def watch_parent(parent: int | None = None) -> None:
    """End this process as soon as `parent` (default: its parent now) is no longer its
    parent: the parent died and the process was handed to init or a subreaper."""
    parent = os.getppid() if parent is None else parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_INTERVAL)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's `prctl`, loaded here before a fork: loading a library in a forked child of a
    threaded parent can deadlock."""
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(None, use_errno=True).prctl


def dies_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A `subprocess.Popen(preexec_fn=...)` that has the kernel send `sig` to the child when
    this process dies (on Linux; elsewhere it does nothing)."""
    prctl, parent = _prctl(), os.getpid()

    def preexec() -> None:
        if prctl is None:
            return
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return preexec
