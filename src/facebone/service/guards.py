"""What stands between a request and the model: body size, a concurrency cap, an API key."""

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


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
            await _send_json(send, 413, {"error": self._message()})
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


async def _send_json(send: Send, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class ConcurrencyGate:
    """At most `limit` requests at work at once; one more is told to come back (503).

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


def check_api_key(expected: str | None, given: str | None) -> None:
    """No key configured: open. Otherwise the `X-API-Key` header must match (401)."""
    if expected is None:
        return
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            401,
            "missing or wrong API key (send it in the X-API-Key header)",
            {"WWW-Authenticate": "X-API-Key"},
        )
