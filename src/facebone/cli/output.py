"""Shared output helpers: machine-readable JSON on stdout, human text otherwise, and stderr
that stays readable around progress bars."""

import json
import logging
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from facebone.atomic import check_outside_data, check_writable
from facebone.errors import FaceBoneError


def json_ready(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None: JSON has no NaN, and a
    strict reader refuses the bare `NaN` Python would write."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value


def emit(result: dict[str, Any], as_json: bool, text: str) -> None:
    """Print `result` as JSON when asked (NaN as null), else the human-readable `text`.

    Flushed here, so a reader that went away (`| head`) shows up as `BrokenPipeError` while
    the command can still end quietly, not later when Python exits.
    """
    if as_json:
        json.dump(json_ready(result), sys.stdout, indent=2, sort_keys=True, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(text)
    sys.stdout.flush()


def _open_bars() -> list:
    """Progress bars on screen (tqdm is only looked at if something imported it)."""
    module = sys.modules.get("tqdm")
    return list(getattr(module.tqdm, "_instances", ())) if module else []


def end_progress_bars() -> None:
    """Close open progress bars, which ends their line: an error then starts on its own."""
    for bar in _open_bars():
        bar.close()


def stdout_gone() -> None:
    """After a write to a closed pipe: point stdout at /dev/null, so Python's own flush at
    exit does not fail a second time and print a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


class ProgressAwareHandler(logging.StreamHandler):
    """Writes log lines above the progress bars (through tqdm) instead of into them."""

    def emit(self, record: logging.LogRecord) -> None:
        bars = _open_bars()
        if not bars:
            super().emit(record)
            return
        try:
            type(bars[0]).write(self.format(record), file=self.stream)
        except Exception:  # logging's contract: report, never raise
            self.handleError(record)


def configure_logging(verbose: bool) -> None:
    handler = ProgressAwareHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    # ART announces its data folder at INFO on import; a user has nothing to do with it.
    logging.getLogger("art").setLevel(logging.DEBUG if verbose else logging.WARNING)


def check_outputs(
    flag: str,
    paths: Iterable[str | os.PathLike],
    force: bool = False,
    data: str | os.PathLike | None = None,
) -> None:
    """The rule of every file a command writes (the one `report` keeps), checked before any
    work: never inside the data folder `data`, never a file that exists unless `force`, never
    a folder, and writable."""
    for path in map(Path, paths):
        if data is not None:
            check_outside_data(path, data, flag)
        if path.is_dir():
            raise FaceBoneError(f"{flag} {path} is a folder, not a file")
        if (path.exists() or path.is_symlink()) and not force:
            raise FaceBoneError(f"{flag} {path} already exists; pass --force to replace it")
        check_writable(path, flag)
