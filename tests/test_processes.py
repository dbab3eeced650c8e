"""Issue 16, processes: every child dies with its parent. A command is killed (`kill -9`, or
SIGTERM) while its children run; within a bounded wait none of them is left."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import test_hardening
from facebone.cli import main
from process_checks import is_alive
from test_hardening import train_args
from test_study import TINY

# How long the children of a killed command may take to notice: a worker that is still
# importing torch on a loaded machine checks its parent only once the import is done.
GONE_WITHIN_S = 90
data = test_hardening.data
pairs_csv = test_hardening.pairs_csv


def _descendants(pid: int) -> dict[int, str]:
    """Every living descendant of `pid`, with its command line."""
    parents, commands = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = commands[child].decode(errors="replace")
                frontier.append(child)
    return found


def _kill_when(command: list[str], ready, sig: int) -> list[int]:
    """Start `command`, wait until `ready(descendants)` holds, send `sig` to it alone; the
    pids of the descendants it had then."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not ready(children := _descendants(process.pid)):
            if process.poll() is not None:
                pytest.fail(f"the command ended first: {process.stderr.read().decode()[-2000:]}")
            assert time.monotonic() < deadline, "the children never started"
            time.sleep(0.1)
        process.send_signal(sig)
    finally:
        process.wait()
        process.stderr.close()
    return list(children)


def _assert_all_gone(children: list[int]) -> None:
    deadline = time.monotonic() + GONE_WITHIN_S
    while any(map(is_alive, children)) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = [pid for pid in children if is_alive(pid)]
    for pid in survivors:  # ours to clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"{len(survivors)} children outlived their parent"


def _two_pool_workers(children: dict[int, str]) -> bool:
    return sum("spawn_main" in command for command in children.values()) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_study_workers_die_with_the_study(sig, lfw_root, cache_dir, tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY.format(data=lfw_root))
    command = [sys.executable, "-m", "facebone", "study", "run", str(config), "--workers", "2"]
    command += ["--out", str(tmp_path / "out"), "--cache", str(cache_dir), "--json"]
    _assert_all_gone(_kill_when(command, _two_pool_workers, sig))


@pytest.mark.slow
def test_comparison_workers_die_with_the_comparison(lfw_root, cache_dir, tmp_path):
    command = [sys.executable, "-m", "facebone", "experiment", "compare", "--quick"]
    command += ["--data", str(lfw_root), "--out", str(tmp_path / "out"), "--workers", "2"]
    command += ["--cache", str(cache_dir), "--canaries", "0", "--json"]
    _assert_all_gone(_kill_when(command, _two_pool_workers, signal.SIGKILL))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_streamlit_dies_with_the_demo(data, pairs_csv, tmp_path, cache_dir):
    model = tmp_path / "model"
    assert main(train_args(data, pairs_csv, model, cache_dir)) == 0
    command = [sys.executable, "-m", "facebone", "demo", "--model", str(model)]
    command += ["--port", str(_free_port()), "--cache", str(cache_dir)]

    def streamlit(children: dict[int, str]) -> bool:
        return any("streamlit" in command for command in children.values())

    _assert_all_gone(_kill_when(command, streamlit, signal.SIGKILL))
