"""Issue 16, the REST service under hostile clients: `facebone serve` on 127.0.0.1 against raw
sockets that send nothing, trickle their headers or bodies, hold many connections, leave in the
middle, or stop the server while uploads are open. Each test waits for what the server does
with a deadline, never for a fixed time.
"""

import contextlib
import signal
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from facebone.cli import main
from facebone.service.process import server_process
from web_images import BLAIR, POWELL

TIMEOUT = 3  # the strict server's --client-timeout, in seconds
CAP = 6  # its --max-connections
DEADLINE = 30  # how long a test waits for the server to act, far over TIMEOUT
SLOW_HEAD = (
    b"POST /verify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n"
)


@pytest.fixture(scope="module")
def sface_model(demo_workdir):
    return demo_workdir / "defended"


@pytest.fixture(scope="module")
def photos(lfw_root) -> dict[str, bytes]:
    return {path: (lfw_root / path).read_bytes() for path in (*POWELL, BLAIR)}


@pytest.fixture(scope="module")
def strict(sface_model):
    """A server with short client deadlines, a small connection cap and one model slot."""
    args = ["--client-timeout", str(TIMEOUT), "--max-connections", str(CAP)]
    with server_process(sface_model, [*args, "--max-concurrent", "1"]) as server:
        yield server


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=DEADLINE)


def answer_after_trickle(sock: socket.socket, head: bytes, trickle: bytes) -> bytes:
    """Send `head`, then one byte of `trickle` whenever 0.2 s pass without an answer; return
    what the server says before it closes (b"" if it closes without a word)."""
    sock.sendall(head)
    sock.settimeout(0.2)
    deadline = time.monotonic() + DEADLINE
    received = b""
    for byte in trickle:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            if time.monotonic() > deadline:
                break
            sock.sendall(bytes([byte]))
            continue
        if not chunk:
            return received
        received += chunk
    sock.settimeout(DEADLINE)
    while chunk := sock.recv(4096):
        received += chunk
    return received


def status_and_error(raw: bytes) -> tuple[int, str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def test_a_connection_that_sends_nothing_is_closed(strict):
    with connect(strict.url) as sock:
        assert sock.recv(4096) == b""  # closed by the server, well within DEADLINE


@pytest.mark.slow
def test_headers_that_trickle_in_get_408(strict):
    """One header byte every 0.2 s keeps the connection busy but never finishes: the header
    deadline counts from the connection, not from the last byte."""
    with connect(strict.url) as sock:
        raw = answer_after_trickle(sock, b"GET /healthz HTTP/1.1\r\n", b"X-Slow: " + b"a" * 10_000)
    status, error = status_and_error(raw)
    assert status == 408 and f"headers took over {TIMEOUT} s" in error


@pytest.mark.slow
def test_a_body_that_trickles_in_gets_408(strict):
    """1 byte every 0.2 s (5 bytes/s) is far under the minimum rate."""
    with connect(strict.url) as sock:
        raw = answer_after_trickle(sock, SLOW_HEAD, b"x" * 100_000)
    status, error = status_and_error(raw)
    assert status == 408 and "body paused" in error and "KiB/s" in error


HEALTH = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@contextlib.contextmanager
def held_open(url: str, count: int, source: str | None = None) -> Iterator[list[socket.socket]]:
    """`count` connections to `url` (from address `source`), each proven open by an answer."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    address = None if source is None else (source, 0)
    held = [
        socket.create_connection((host, int(port)), timeout=DEADLINE, source_address=address)
        for _ in range(count)
    ]
    try:
        for sock in held:
            sock.sendall(HEALTH)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        yield held
    finally:
        for sock in held:
            sock.close()


def test_connections_over_the_cap_are_refused(strict):
    """CAP connections, each proven open by an answer on it; one more is answered 503."""
    with held_open(strict.url, CAP), connect(strict.url) as extra:
        raw = extra.recv(4096)
        assert extra.recv(4096) == b""
    status, error = status_and_error(raw)
    assert status == 503 and "too many connections" in error


def test_one_address_cannot_take_every_connection(sface_model):
    """Two connections from 127.0.0.1 are its share; its third is answered 503, while a
    client at another address (127.0.0.2, also this machine) still gets in."""
    args = ["--max-connections", str(CAP), "--max-connections-per-client", "2"]
    with server_process(sface_model, args) as server, held_open(server.url, 2):
        with connect(server.url) as extra:
            raw = extra.recv(4096)
        with held_open(server.url, 1, source="127.0.0.2"):
            pass  # answered: another address still gets in
    status, error = status_and_error(raw)
    assert status == 503 and "from this address" in error


def test_slow_uploads_hold_no_place_at_the_model(strict, photos):
    """Three uploads stuck in their bodies, one model slot: a complete request still gets its
    answer, because a request takes the slot only once its body is in."""
    slow = [connect(strict.url) for _ in range(3)]
    try:
        for sock in slow:
            sock.sendall(SLOW_HEAD)
        with httpx.Client(base_url=strict.url, timeout=DEADLINE) as client:
            client.get("/healthz")  # the slow requests' headers are in by now
            files = {"img1": photos[POWELL[0]], "img2": photos[POWELL[1]]}
            answer = client.post("/verify", files=files)
        assert answer.status_code == 200, answer.text
    finally:
        for sock in slow:
            sock.close()


def test_clients_that_leave_write_no_traceback(strict, photos):
    """Clients leave while sending a multipart body, a JSON body, and while the model works
    on their photos; the server logs no traceback and goes on answering."""
    request = httpx.Request(
        "POST",
        f"{strict.url}/verify",
        files={"img1": photos[POWELL[0]], "img2": photos[POWELL[1]]},
    )
    whole = request.read()
    head = b"".join(f"{k}: {v}\r\n".encode() for k, v in request.headers.items())
    for sent in (
        SLOW_HEAD + b'Content-Disposition: form-data; name="img1"; filename="a"\r\n\r\nabc',
        b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"img1": "',
        b"POST /verify HTTP/1.1\r\n" + head + b"\r\n" + whole,
    ):
        with connect(strict.url) as sock:
            sock.sendall(sent)
    # The model slot is free again once the last one's work is done: poll for it.
    deadline = time.monotonic() + DEADLINE
    with httpx.Client(base_url=strict.url, timeout=DEADLINE) as client:
        while True:
            answer = client.post("/verify", content=whole, headers=request.headers)
            if answer.status_code != 503 or time.monotonic() > deadline:
                break
    assert answer.status_code == 200, answer.text
    assert "Traceback" not in strict.log(), strict.log()


def test_serve_stops_on_sigterm_with_uploads_open(sface_model):
    with server_process(sface_model) as server:
        open_uploads = [connect(server.url) for _ in range(3)]
        for sock in open_uploads:
            sock.sendall(SLOW_HEAD)
        idle = connect(server.url)
        httpx.get(f"{server.url}/healthz", timeout=DEADLINE)  # the uploads are in progress
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=DEADLINE)
        finally:
            for sock in [*open_uploads, idle]:
                sock.close()
        assert server.process.returncode in (0, -signal.SIGTERM)
        assert "Traceback" not in server.log(), server.log()


@pytest.mark.parametrize("flag", ["--api-key-file", "--key-file"])
def test_a_key_inside_the_model_folder_is_refused_before_any_work(flag, tmp_path, capsys):
    """The model folder is not even a model: the key's place is refused first."""
    model = tmp_path / "model"
    (model / "keys").mkdir(parents=True)
    key = model / "keys" / "secret"
    key.write_text("k" * 24)
    code = main(
        ["serve", "--model", str(model), flag, str(tmp_path / "model/../model/keys/secret")]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{flag} " in err and "inside --model" in err and "never hold its key" in err


def test_an_api_key_file_that_never_ends_is_refused(sface_model, capsys):
    code = main(["serve", "--model", str(sface_model), "--api-key-file", "/dev/zero"])
    assert code == 2 and "over 64 KiB" in capsys.readouterr().err


def test_an_image_file_is_refused_by_its_size_before_it_is_read(tmp_path, capsys):
    """A 3 GB file named .jpg (sparse: it takes no disk) is refused without being read."""
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as file:
        file.truncate(3 * 1024**3)
    assert main(["embed", "--images", str(huge)]) == 2
    err = capsys.readouterr().err
    assert "huge.jpg: file is over 256 MB" in err and "Traceback" not in err
