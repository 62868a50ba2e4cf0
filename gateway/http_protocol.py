"""uvicorn's HTTP/1.1 protocol (h11), with the two answers the application cannot give.

A request that is not HTTP (a garbage request line, broken headers) never reaches the
application: uvicorn answers it with a plain-text 400. Here it gets the documented error
JSON instead. And uvicorn sets no timer while it waits for a request's headers: a client
that connects and sends nothing, or headers a byte at a time, holds the connection for
ever. Here the headers of each request must be complete within `header_timeout_seconds`,
or the connection gets 408 `request_timeout` and is closed. (The body has its own bounds:
`gateway/connection.py`.)

Closing a connection whose client is still sending (a 413 in the middle of an upload)
makes the kernel answer the unread bytes with a reset, which can destroy the error
response before the client has read it. So such a close lingers, as nginx does it: the
response is sent and the sending side shut (FIN), then whatever still arrives is read and
dropped for at most `LINGER_SECONDS`, and the socket is closed. A connection whose client
has sent all it meant to is closed at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import h11
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

LINGER_SECONDS = 2.0


class _LingeringTransport:
    """The connection's transport, whose close() lingers while the client may still be
    sending (see the module docstring)."""

    def __init__(
        self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, still_sending: Callable[[], bool]
    ) -> None:
        self._transport = transport
        self._loop = loop
        self._still_sending = still_sending
        self.lingering = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        if self.lingering or self._transport.is_closing():
            return
        if not self._still_sending():
            self._transport.close()
            return
        self.lingering = True
        # The real close first: it must happen even when the client has already reset.
        self._loop.call_later(LINGER_SECONDS, self._transport.close)
        try:
            if self._transport.can_write_eof():
                self._transport.write_eof()
            self._transport.resume_reading()
        except OSError:
            self._transport.close()


def _json_error(status: int, code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


class GatewayHttpProtocol(H11Protocol):
    header_timeout_seconds = 10.0

    # uvicorn's signature (narrower than asyncio.Protocol's, ignored there too), and a proxy in
    # place of its transport: _LingeringTransport passes on all it does not change.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        self._lingering = _LingeringTransport(transport, self.loop, self._client_still_sending)
        super().connection_made(self._lingering)  # type: ignore[arg-type]
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering.lingering:
            return  # the reply is out and the connection closing: the rest is dropped
        # IDLE on the client's side: waiting for (the rest of) a request's headers.
        if self.conn.their_state is h11.IDLE:
            self._arm_header_timer()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_timer()

    def send_400_response(self, msg: str) -> None:
        self._reply_and_close(400, "bad_request", f"The request is not valid HTTP/1.1: {msg}")

    def _client_still_sending(self) -> bool:
        # In a request's body, or in bytes h11 could not parse: more may be on the way.
        return self.conn.their_state in (h11.SEND_BODY, h11.ERROR)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_seconds, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.our_state is h11.IDLE:
            self._reply_and_close(
                408,
                "request_timeout",
                f"The request headers did not arrive within {self.header_timeout_seconds:g} s.",
            )
        else:
            self.transport.close()

    def _reply_and_close(self, status: int, code: str, message: str) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            # A request in progress (a chunk of its body did not parse) is over for its app:
            # it sees the disconnect, and what it still sends goes nowhere.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            self.transport.close()  # a response is already under way: it cannot become this one
            return
        body = _json_error(status, code, message)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=status, headers=headers, reason=STATUS_PHRASES[status]),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


def http_protocol(header_timeout_seconds: float) -> type[GatewayHttpProtocol]:
    """The protocol class for uvicorn's `http=` option, with the given header timeout."""
    return type("GatewayHttpProtocol", (GatewayHttpProtocol,), {"header_timeout_seconds": header_timeout_seconds})
