"""Run the REST API with uvicorn on a socket bound here, so a busy port is a clear error and
port 0 gives a free one that is printed for the caller."""

import functools
import socket

from facebone.errors import FaceBoneError
from facebone.service.connections import ConnectionLimits, GuardedH11Protocol

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line error."""
    if not 0 <= port <= 65535:
        raise FaceBoneError(f"port {port} is out of range (0-65535)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Named TCP, asyncio turns Nagle's algorithm off on each connection; unnamed (protocol 0)
    # it does not, and every response waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise FaceBoneError(f"cannot listen on {host}:{port} ({error.strerror})") from None
    return sock


# On SIGINT or SIGTERM, requests at work get this long to finish; then they are cancelled, so
# a client still uploading cannot keep the server from stopping.
SHUTDOWN_GRACE_S = 2


def run_app(app, sock: socket.socket, limits: ConnectionLimits) -> None:
    """Serve `app` on `sock` until SIGINT or SIGTERM, each connection within `limits`."""
    import uvicorn

    config = uvicorn.Config(
        app,
        http=functools.partial(GuardedH11Protocol, limits=limits),
        ws="none",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    uvicorn.Server(config).run(sockets=[sock])
