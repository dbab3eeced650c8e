"""What stands between a connection and the app: a connection cap, header and body deadlines.

uvicorn closes a kept-alive connection once it idles, but gives a client all the time it
wants to send its headers or its body, and keeps every socket it accepts (its
`limit_concurrency` answers 503 yet holds the connection). A client could hold the server
with connections that send nothing, or one byte every few seconds. `GuardedH11Protocol` adds
to uvicorn's h11 protocol, for each connection:

- over `max_connections` open, or over `per_client` open from its address, it is answered
  503 and closed at once (one address cannot take every connection; behind a proxy every
  client has the proxy's address, so set `per_client` to `max_connections` there);
- a request's headers must be in within `timeout` s of the connection (or of the previous
  answer on a kept-alive one): if not, 408 (or, if nothing came, the connection is closed);
- its body must never pause for `timeout` s, and must come at `min_rate` bytes/s on average
  once it has had `timeout` s: if not, 408.

Only a request whose body is in reaches the concurrency gate (`guards.py`), so a slow client
holds a connection, never a place at the model. When the server stops, requests still coming
in are refused at once, so open uploads cannot delay the stop.
"""

import http
import json
from dataclasses import dataclass

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


@dataclass(frozen=True)
class ConnectionLimits:
    """`max_connections` open at once, `per_client` of them from one address; `timeout` s for
    the headers and for any pause in a body; `min_rate` bytes/s for a body on average (16
    KiB/s: a 3 MB photo in about 3 min, on the slowest mobile link that still carries
    photos)."""

    max_connections: int = 64
    timeout: float = 10.0
    min_rate: int = 16 * 1024
    per_client: int = 16

    def __post_init__(self) -> None:
        if (
            min(self.max_connections, self.per_client) < 1
            or self.timeout <= 0
            or self.min_rate <= 0
        ):
            raise ValueError(f"connection limits must be positive: {self}")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with `ConnectionLimits` (see the module docstring)."""

    def __init__(self, *args, limits: ConnectionLimits, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._timer = None
        self._phase = "headers"  # then "body" while the body comes, "app" once it is in
        self._body_start = 0.0
        self._body_bytes = 0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, "too many connections open; retry shortly")
            return
        if self._from_my_address() > self.limits.per_client:
            self._refuse(503, "too many connections open from this address; retry shortly")
            return
        self._await_headers()

    def _from_my_address(self) -> int:
        """Open connections from this one's address, this one included."""
        host = self.client[0] if self.client else None
        return sum(1 for c in self.connections if c.client and c.client[0] == host)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == "body":
            self._body_bytes += len(data)
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def shutdown(self) -> None:
        """The server is stopping: a request still coming in is refused at once (503), so a
        slow upload cannot hold the stop; one at work gets the grace `server.py` gives."""
        if self._phase == "body" and self.cycle is not None and not self.cycle.response_started:
            self._refuse(503, "the server is shutting down")
        else:
            super().shutdown()

    def _follow(self) -> None:
        """Keep the deadline of the phase the request is now in."""
        if self.transport.is_closing():
            self._disarm()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._phase != "headers":
                self._await_headers()
        elif state is h11.SEND_BODY:
            now = self.loop.time()
            if self._phase != "body":
                self._phase, self._body_start, self._body_bytes = "body", now, 0
            pace = self._body_start + self.limits.timeout + self._body_bytes / self.limits.min_rate
            self._arm(min(now + self.limits.timeout, pace))
        else:
            self._phase = "app"
            self._disarm()

    def _await_headers(self) -> None:
        self._phase = "headers"
        self._arm(self.loop.time() + self.limits.timeout)

    def _arm(self, when: float) -> None:
        self._disarm()
        self._timer = self.loop.call_at(when, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # the app has not taken what came: not the client's delay
            self._arm(self.loop.time() + self.limits.timeout)
            return
        seconds = f"{self.limits.timeout:g} s"
        if self._phase == "headers" and self.conn.trailing_data[0]:
            self._refuse(408, f"request timeout: the headers took over {seconds}")
        elif self._phase == "body" and self.cycle is not None and not self.cycle.response_started:
            self._refuse(
                408,
                f"request timeout: the body paused over {seconds} or came slower than "
                f"{self.limits.min_rate // 1024} KiB/s",
            )
        else:  # nothing sent, or the answer is out already: nothing to say
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` and close, outside h11's bookkeeping: the request is incomplete.
        The app, if it was reading the body, sees the client gone."""
        body = json.dumps({"error": message}).encode()
        head = (
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()
