"""Atomic file writes: a crash or an error never leaves a half-written file behind.

Outputs are also checked before the work that fills them starts (`check_writable`), so a
read-only or misspelt destination fails in a second, not after an hour of training.
"""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from facebone.errors import FaceBoneError


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which would race with other
# threads creating files if done on every write.
_UMASK = _read_umask()


def new_mode(directory: bool = False) -> int:
    """The mode a plain `open()` or `mkdir()` gives under the user's umask."""
    return (0o777 if directory else 0o666) & ~_UMASK


def _write_error(path: Path, error: OSError) -> FaceBoneError:
    return FaceBoneError(f"cannot write {path} ({error.strerror or error})")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise _write_error(target, error) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, new_mode())
        try:
            os.replace(tmp, target)
        except OSError as error:
            raise _write_error(target, error) from None
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as error:
            raise _write_error(Path(path), error) from None


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def check_writable(path: str | os.PathLike, what: str, folder: bool = False) -> None:
    """Fail now if `path`, a file or folder that a command will create or replace, cannot be
    written: its nearest existing folder (and the folder itself if it exists) must take a file.
    With `folder`, `path` is a folder the command writes into, so a file there is an error.
    """
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise FaceBoneError(f"{what} {path} is a file, not a folder")
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    folders = [existing] + ([path] if path.is_dir() else [])
    for folder in folders:
        if not folder.is_dir():
            raise FaceBoneError(f"{what} {path}: {folder} is not a folder")
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            raise FaceBoneError(
                f"{what} {path} cannot be written ({error.strerror or error})"
            ) from None


def is_inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether `path` is `folder` or lies below it, links and `..` resolved."""
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def check_outside_data(path: str | os.PathLike, data: str | os.PathLike, what: str) -> None:
    """Fail if `path`, something a command writes, lies in the data folder `data`: its files
    would then be read as photos, and a photo there could be replaced."""
    if is_inside(path, data):
        raise FaceBoneError(
            f"{what} {path} is inside the data folder {data}: its files would be read as "
            "photos (or replace one); choose a place outside it"
        )


def write_private(path: Path, data: bytes, overwrite: bool, what: str = "key file") -> None:
    """Write a secret (`what`) whole or not at all, readable by its owner only (mkstemp's
    0600); without `overwrite` the final link fails if the file appeared meanwhile, so no key
    is ever lost."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise FaceBoneError(f"cannot write {what} {path} ({error.strerror or error})") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    except FileExistsError:
        raise FaceBoneError(f"{what} {path} exists; not overwriting it") from None
    except OSError as error:
        raise FaceBoneError(f"cannot write {what} {path} ({error.strerror or error})") from None
    finally:
        tmp.unlink(missing_ok=True)
