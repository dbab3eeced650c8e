"""Download the official LFW archive, verified and unpacked safely.

The archive is checked against a known SHA-256 before anything is unpacked, every member is
vetted (no absolute paths, no `..`, no links or devices), and the folder only appears in
`dest` by one rename once it is complete, so an interrupted or corrupted download never
leaves a half-filled `lfw/` that later code would mistake for the real data.
"""

import contextlib
import hashlib
import http.client
import logging
import os
import re
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from facebone import __version__
from facebone.errors import FaceBoneError

logger = logging.getLogger(__name__)

# The original http://vis-www.cs.umass.edu/lfw/lfw.tgz, mirrored on figshare; the same URL
# and checksum that scikit-learn's `fetch_lfw_people` uses.
LFW_URL = "https://ndownloader.figshare.com/files/5976018"
LFW_SHA256 = "055f7d9c632d7370e6fb4afc7468d40f970c34a80d4c6f50ffec63f5a8d536c0"
LFW_FOLDER = "lfw"

_CHUNK = 1 << 20
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def default_data_dir() -> Path:
    """Where downloads go when no destination is given: outside any source tree."""
    return Path.home() / ".cache" / "facebone"


def download_lfw(
    dest: str | os.PathLike,
    url: str = LFW_URL,
    sha256: str = LFW_SHA256,
    timeout: float = 60,
) -> Path:
    """Download, verify and unpack LFW into `dest`; return `dest/lfw` (the person folders).

    Skips the download when `dest/lfw` already holds images: it can only have got there
    complete, because it is moved into place in one rename.
    """
    dest = Path(dest)
    target = dest / LFW_FOLDER
    expected = sha256.strip().lower()
    if not _SHA256_RE.fullmatch(expected):
        raise FaceBoneError(f"--sha256 must be 64 hexadecimal digits, got {sha256!r}")
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise FaceBoneError(
                f"{target} exists and is not a folder; remove it or choose another destination"
            )
        if lfw_counts(target)[1] > 0:
            logger.info("LFW already present in %s; skipping the download", target)
            return target
        raise FaceBoneError(
            f"{target} exists but holds no LFW images; remove it or choose another destination"
        )

    created = [folder for folder in (dest, *dest.parents) if not folder.exists()]
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FaceBoneError(f"cannot create {dest}: {error.strerror or error}") from error
    try:
        with tempfile.TemporaryDirectory(prefix=".lfw-download-", dir=dest) as work_name:
            work = Path(work_name)
            archive = work / "lfw.tgz"
            actual = _fetch(url, archive, timeout)
            if actual != expected:
                raise FaceBoneError(
                    f"checksum mismatch for {url}: expected SHA-256 {expected}, got {actual}"
                )
            unpacked = work / "unpacked"
            _safe_extract(archive, unpacked)
            archive.unlink()
            folder = unpacked / LFW_FOLDER
            if not folder.is_dir() or lfw_counts(folder)[1] == 0:
                raise FaceBoneError(f"archive from {url} has no images under '{LFW_FOLDER}/'")
            try:
                os.rename(folder, target)
            except OSError as error:
                raise FaceBoneError(f"cannot move LFW into {target}: {error}") from error
    except BaseException:
        for folder in created:  # deepest first
            _remove_if_empty(folder)
        raise
    people, images = lfw_counts(target)
    logger.info("LFW ready in %s: %d people, %d images", target, people, images)
    return target


def lfw_counts(folder: str | os.PathLike) -> tuple[int, int]:
    """Count (people, images) in an LFW-layout folder: one sub-folder of JPEGs per person."""
    people = images = 0
    for person in Path(folder).iterdir():
        if not person.is_dir():
            continue
        n = sum(1 for f in person.iterdir() if f.suffix.lower() == ".jpg" and f.is_file())
        if n:
            people += 1
            images += n
    return people, images


def _fetch(url: str, path: Path, timeout: float) -> str:
    """Stream `url` into `path` with a progress bar; return the SHA-256 hex digest."""
    request = urllib.request.Request(url, headers={"User-Agent": f"facebone/{__version__}"})
    digest = hashlib.sha256()
    received = 0
    logger.info("downloading %s", url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with (
                path.open("wb") as out,
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=path.name,
                    file=sys.stderr,
                    disable=None,  # only on a terminal: keeps logs and pipes clean
                ) as bar,
            ):
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        raise FaceBoneError(
            f"download of {url} failed: HTTP {error.code} {error.reason}"
        ) from error
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            reason = f"no answer within {timeout:g} s"
        raise FaceBoneError(f"cannot download {url}: {reason}") from error
    except TimeoutError as error:
        raise FaceBoneError(f"download of {url} timed out after {timeout:g} s") from error
    except (OSError, http.client.HTTPException) as error:
        raise FaceBoneError(f"download of {url} failed: {error}") from error
    if total is not None and received != total:
        raise FaceBoneError(f"download of {url} is incomplete: got {received} of {total} bytes")
    return digest.hexdigest()


def _safe_extract(archive: Path, into: Path) -> None:
    """Unpack `archive` into `into`, refusing any member that could escape it or link out."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member)
            into.mkdir()
            tar.extractall(into, members=members, filter="data")
    except tarfile.FilterError as error:
        raise FaceBoneError(f"refusing unsafe archive member: {error}") from error
    except (tarfile.TarError, EOFError) as error:
        raise FaceBoneError(f"{archive.name} is not a valid .tgz archive: {error}") from error


def _check_member(member: tarfile.TarInfo) -> None:
    name = member.name
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
        raise FaceBoneError(f"refusing unsafe archive member {name!r}: path leaves the archive")
    if member.issym() or member.islnk():
        raise FaceBoneError(f"refusing unsafe archive member {name!r}: links are not allowed")
    if not (member.isfile() or member.isdir()):
        raise FaceBoneError(f"refusing unsafe archive member {name!r}: not a file or folder")


def _remove_if_empty(folder: Path) -> None:
    """Undo creating `dest` when the download failed, unless something else is in it now."""
    with contextlib.suppress(OSError):
        folder.rmdir()
