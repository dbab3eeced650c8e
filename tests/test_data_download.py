"""`facebone data download lfw` against a local HTTP server serving archives built from real LFW."""

import functools
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import facebone.cli
from facebone.data.download import LFW_SHA256, LFW_URL, download_lfw
from facebone.errors import FaceBoneError

REPO = Path(__file__).resolve().parents[1]
LFW = REPO.parent / "shared" / "data" / "lfw"
PEOPLE = ["Abdullah_Gul", "Adrien_Brody", "Aaron_Patterson"]

pytestmark = pytest.mark.skipif(not LFW.is_dir(), reason=f"shared LFW data not found at {LFW}")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Path]:
    """A folder served over HTTP on an ephemeral port; yields the folder, base URL on `.url`."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield _Served(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _Served:
    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url

    def put(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return f"{self.url}/{name}"


@pytest.fixture(autouse=True)
def only_data_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build the CLI with just the `data` group so these tests do not depend on the others."""
    monkeypatch.setattr(facebone.cli, "COMMAND_MODULES", ("facebone.cli.data",))


def _lfw_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(LFW / PEOPLE[0], arcname=f"lfw/{PEOPLE[0]}")  # folder entries included
        for person in PEOPLE[1:]:
            for image in sorted((LFW / person).glob("*.jpg")):
                tar.add(image, arcname=f"lfw/{person}/{image.name}")
    return buffer.getvalue()


def _source_files() -> dict[str, bytes]:
    return {
        f"{p}/{f.name}": f.read_bytes() for p in PEOPLE for f in sorted((LFW / p).glob("*.jpg"))
    }


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("facebone: error:")]


def test_official_archive_facts() -> None:
    assert LFW_URL.startswith("https://")
    assert len(LFW_SHA256) == 64 and int(LFW_SHA256, 16) >= 0


def test_download_unpacks_identical_images_then_skips(
    served: _Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = _lfw_archive()
    url = served.put("lfw.tgz", archive)
    dest = tmp_path / "data"

    code = facebone.cli.main(
        ["data", "download", "lfw", "--dest", str(dest), "--url", url, "--sha256", _sha(archive)]
    )

    out = capsys.readouterr().out
    assert code == 0
    expected = _source_files()
    landed = {
        f"{f.parent.name}/{f.name}": f.read_bytes()
        for f in (dest / "lfw").glob("*/*")
        if f.is_file()
    }
    assert landed == expected
    assert f"{len(PEOPLE)} people, {len(expected)} images" in out
    assert str(dest / "lfw") in out
    assert sorted(os.listdir(dest)) == ["lfw"]  # no temp folder or archive left behind

    # Second run: complete data is reused, so even a dead URL does not matter.
    code = facebone.cli.main(
        ["data", "download", "lfw", "--dest", str(dest), "--url", f"{served.url}/gone.tgz",
         "--sha256", _sha(archive), "--json"]
    )  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result == {
        "dataset": "lfw",
        "path": str(dest / "lfw"),
        "people": len(PEOPLE),
        "images": len(expected),
    }


def test_corrupted_download_is_rejected_and_leaves_nothing(
    served: _Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = _lfw_archive()
    corrupted = bytearray(archive)
    corrupted[len(corrupted) // 2] ^= 0xFF
    url = served.put("lfw.tgz", bytes(corrupted))
    dest = tmp_path / "data"

    code = facebone.cli.main(
        ["data", "download", "lfw", "--dest", str(dest), "--url", url, "--sha256", _sha(archive)]
    )

    err = capsys.readouterr().err
    assert code == 2
    errors = _error_lines(err)
    assert len(errors) == 1
    assert _sha(archive) in errors[0] and _sha(bytes(corrupted)) in errors[0]
    assert not dest.exists()  # created for the download, removed again when it failed


def test_corrupted_download_in_existing_dest_keeps_other_files(
    served: _Served, tmp_path: Path
) -> None:
    archive = _lfw_archive()
    url = served.put("lfw.tgz", archive[:-10] + b"0123456789")
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(FaceBoneError, match="checksum mismatch"):
        download_lfw(dest, url=url, sha256=_sha(archive))
    assert sorted(os.listdir(dest)) == ["keep.txt"]


def test_console_shows_one_line_error(served: _Served, tmp_path: Path) -> None:
    """The real console flow, in a fresh interpreter: exit 2, one error line, no traceback."""
    archive = _lfw_archive()
    url = served.put("lfw.tgz", archive + b"junk")
    dest = tmp_path / "data"
    script = (
        "import sys, facebone.cli as c; c.COMMAND_MODULES = ('facebone.cli.data',); "
        "sys.exit(c.main(sys.argv[1:]))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", script, "data", "download", "lfw", "--dest", str(dest),
         "--url", url, "--sha256", _sha(archive)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = _error_lines(done.stderr)
    assert len(errors) == 1 and "checksum mismatch" in errors[0]
    assert done.stdout == ""
    assert not (dest / "lfw").exists()


def test_http_404_is_a_user_error(
    served: _Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = facebone.cli.main(
        ["data", "download", "lfw", "--dest", str(tmp_path / "d"), "--url",
         f"{served.url}/missing.tgz", "--sha256", LFW_SHA256]
    )  # fmt: skip
    errors = _error_lines(capsys.readouterr().err)
    assert code == 2
    assert len(errors) == 1 and "HTTP 404" in errors[0]
    assert not (tmp_path / "d").exists()


def test_unreachable_server_is_a_user_error(served: _Served, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FaceBoneError, match="cannot download"):
        download_lfw(tmp_path / "d", url=f"http://127.0.0.1:{port}/lfw.tgz", timeout=5)


def _malicious(kind: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        good = next((LFW / PEOPLE[0]).glob("*.jpg"))
        tar.add(good, arcname=f"lfw/{PEOPLE[0]}/{good.name}")
        info = tarfile.TarInfo()
        payload = b"pwned"
        if kind == "dotdot":
            info.name = "../evil"
        elif kind == "nested-dotdot":
            info.name = "lfw/../../evil"
        elif kind == "absolute":
            info.name = "/tmp/facebone-evil-absolute"
        else:
            info.name = "lfw/link"
            info.type = tarfile.SYMTYPE
            info.linkname = "../../evil"
            payload = b""
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload) if payload else None)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["dotdot", "nested-dotdot", "absolute", "symlink"])
def test_malicious_archive_is_rejected(
    kind: str, served: _Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = _malicious(kind)
    url = served.put("evil.tgz", archive)
    dest = tmp_path / "a" / "b"

    code = facebone.cli.main(
        ["data", "download", "lfw", "--dest", str(dest), "--url", url, "--sha256", _sha(archive)]
    )

    errors = _error_lines(capsys.readouterr().err)
    assert code == 2
    assert len(errors) == 1 and "unsafe archive member" in errors[0]
    assert not dest.parent.exists()  # both created folders removed again
    leftovers = [p for p in tmp_path.rglob("*evil*") if "www" not in p.parts]
    assert leftovers == []
    assert not Path("/tmp/facebone-evil-absolute").exists()


def test_bad_checksum_argument(tmp_path: Path) -> None:
    with pytest.raises(FaceBoneError, match="64 hexadecimal"):
        download_lfw(tmp_path, url="http://127.0.0.1:1/x", sha256="abc")


def test_existing_empty_lfw_folder_is_not_taken_as_complete(tmp_path: Path) -> None:
    (tmp_path / "lfw").mkdir()
    with pytest.raises(FaceBoneError, match="holds no LFW images"):
        download_lfw(tmp_path, url="http://127.0.0.1:1/x")
