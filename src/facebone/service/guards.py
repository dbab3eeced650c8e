"""What stands between a request and the model: API keys and their scopes, body size, a query
budget per client and a concurrency cap. (What stands between a connection and the app,
timeouts and the connection cap, is in `connections.py`.)"""

import hmac
import json
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request

# Windowed budgets forget clients whose window has passed once this many are counted, so
# clients that come once do not pile up.
FORGET_AFTER = 10_000

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# What anyone may ask a server that has keys: is it alive? Nothing else, not even which model
# it serves or what its API looks like.
PUBLIC_PATHS = frozenset({"/healthz"})
KEY_HEADER = "X-API-Key"

# What a key may ask, each scope a family of routes: `verify` compares two photos or a photo
# with an enrolled subject; `identify` searches the gallery (it alone answers "is this person
# enrolled?"); `enrol` adds and deletes subjects; `admin` lists them; `embed` reads templates.
SCOPES = ("verify", "identify", "enrol", "admin", "embed")
# A key listed without scopes: the least a client can do.
DEFAULT_SCOPES = frozenset({"verify"})


@dataclass(frozen=True)
class ApiKey:
    """A key clients send in the X-API-Key header and the `scopes` (of `SCOPES`) it grants."""

    key: str
    scopes: frozenset[str] = DEFAULT_SCOPES

    def __post_init__(self) -> None:
        unknown = sorted(self.scopes - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scope {unknown[0]!r} (scopes: {', '.join(SCOPES)})")


class AccessGuard:
    """With `api_keys`, every path but `PUBLIC_PATHS` needs one of them in the X-API-Key header
    (401 before the body is read); unknown paths too, so a stranger cannot map the API.

    It also tells the app who asks (`request.state.client`): `key N` for the N-th key, the
    client's address when the server has no keys, None for a public request without a key;
    and what it may ask (`request.state.scopes`: the key's scopes, every scope on a server
    without keys, none without a key), which each route checks with `require_scope`.
    The query budget is counted per client.
    """

    def __init__(self, app: Callable, api_keys: Sequence[ApiKey]) -> None:
        self.app = app
        self.api_keys = list(api_keys)
        self.encoded = [api_key.key.encode() for api_key in api_keys]

    def client_of(self, scope: Scope) -> tuple[str | None, frozenset[str]]:
        if not self.api_keys:
            address = scope.get("client")
            return f"address {address[0] if address else 'unknown'}", frozenset(SCOPES)
        given = dict(scope["headers"]).get(KEY_HEADER.lower().encode())
        if given is None:
            return None, frozenset()
        # Every key is compared, in constant time each: the time taken tells nothing.
        matches = [hmac.compare_digest(given, key) for key in self.encoded]
        if not any(matches):
            return None, frozenset()
        number = matches.index(True)
        return f"key {number + 1}", self.api_keys[number].scopes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client, scopes = self.client_of(scope)
        if client is None and scope["path"] not in PUBLIC_PATHS:
            await send_json(
                send,
                401,
                {"error": f"missing or wrong API key (send it in the {KEY_HEADER} header)"},
                [(b"www-authenticate", KEY_HEADER.encode())],
            )
            return
        state = scope.setdefault("state", {})
        state["client"], state["scopes"] = client, scopes
        await self.app(scope, receive, send)


def require_scope(scope: str) -> Callable[[Request], None]:
    """A route dependency: 403 unless the client's key grants `scope`. It runs before the
    route reads the body, so the refusal is the same whatever the request carries."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def check(request: Request) -> None:
        if scope not in request.state.scopes:
            raise HTTPException(
                403, f"this API key lacks the scope {scope!r} (grant it in the API key file)"
            )

    return check


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413, before or while they are received.

    A declared Content-Length over the limit is refused at once; a chunked body is counted as
    it arrives, so a client cannot make the server buffer more than the limit.
    """

    def __init__(self, app: Callable, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return f"request body over {self.max_bytes // (1024 * 1024)} MB"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await send_json(send, 413, {"error": self._message()})
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the route that reads the body: becomes a JSON 413.
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, counted_receive, send)


async def send_json(
    send: Send, status: int, body: dict, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    payload = json.dumps(body).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": [*start, *headers]})
    await send({"type": "http.response.body", "body": payload})


class QueryBudget:
    """At most `limit` answers per client (None: no limit), each pair verified or photo
    embedded counting one.

    The counts live in this server process's memory: they start again from zero when the
    server restarts, and, with a `window` in seconds, when that long has passed since the
    client's first counted answer (None: never). A request takes its answer from the budget
    before it is read, and gives it back if it fails, so concurrent requests cannot overdraw.
    Used from the event loop only, so plain counters need no lock.
    """

    def __init__(
        self,
        limit: int | None,
        window: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError("a query budget must allow at least 1 answer")
        if window is not None and window <= 0:
            raise ValueError("a query budget's window must be positive")
        self.limit = limit
        self.window = window
        self.clock = clock
        self._used: dict[str, tuple[float, int]] = {}  # client -> (window start, answers)

    def _count(self, client: str) -> tuple[float, int]:
        now = self.clock()
        start, used = self._used.get(client, (now, 0))
        if self.window is not None and now - start >= self.window:
            start, used = now, 0
        return start, used

    @contextmanager
    def spend(self, client: str, answers: int = 1) -> Iterator[None]:
        """Take `answers` from `client`'s budget (429 if they are not left), given back if
        the body of the `with` fails."""
        if self.limit is None:
            yield
            return
        if self.window is not None and len(self._used) > FORGET_AFTER:
            now = self.clock()
            self._used = {c: n for c, n in self._used.items() if now - n[0] < self.window}
        start, used = self._count(client)
        if used + answers > self.limit:
            raise self._refusal(start)
        self._used[client] = (start, used + answers)
        try:
            yield
        except BaseException:
            start, used = self._used[client]
            self._used[client] = (start, used - answers)
            raise

    def _refusal(self, start: float) -> HTTPException:
        if self.window is None:
            return HTTPException(
                429,
                f"query budget used up: this client has had its {self.limit} answers; "
                "the count starts again only when the server restarts",
            )
        wait = max(1, round(start + self.window - self.clock()))
        return HTTPException(
            429,
            f"query budget used up: this client has had its {self.limit} answers in "
            f"{self.window:g} s; more in {wait} s",
            headers={"Retry-After": str(wait)},
        )


class ConcurrencyGate:
    """At most `limit` requests at work at once; one more is told to come back (503).

    A request enters only once its body is in, so a slow upload holds no place here.
    Used from the event loop only, so a plain counter needs no lock.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the concurrency limit must be at least 1")
        self.limit = limit
        self.active = 0

    def __enter__(self) -> "ConcurrencyGate":
        if self.active >= self.limit:
            raise HTTPException(
                503,
                f"server busy: {self.limit} requests already in progress; retry shortly",
                headers={"Retry-After": "1"},
            )
        self.active += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.active -= 1
