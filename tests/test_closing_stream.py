"""gateway/streaming.py: a streamed response closes its body iterator however it ends, so the
upstream call behind it is cancelled at once, not when the garbage collector gets to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.requests import ClientDisconnect

from gateway.streaming import ClosingStreamingResponse


async def test_a_client_gone_mid_send_closes_the_body_iterator() -> None:
    closed: list[bool] = []

    async def upstream() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"audio"
        finally:
            closed.append(True)  # where the upstream gRPC call is cancelled

    body = upstream()  # kept referenced: only an explicit close can run its finally now
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)
        if len(sent) == 3:  # the start, one chunk, then the client is gone
            raise OSError("client disconnected")

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}}
    with pytest.raises((ClientDisconnect, OSError)):
        await ClosingStreamingResponse(body, media_type="audio/mpeg")(scope, receive, send)
    assert closed == [True]
