"""The gateway's HTTP front (gateway/http_protocol.py, gateway/connection.py) on a tiny
app, without models: timeouts, JSON for what is not HTTP, closing instead of draining,
and cancelling the work of a client that has gone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from gateway.connection import ConnectionGuard
from gateway.errors import install_error_handlers
from gateway.http_protocol import LINGER_SECONDS, http_protocol


class Outcomes:
    def __init__(self) -> None:
        self.slow: list[str] = []


@contextlib.asynccontextmanager
async def front(outcomes: Outcomes) -> AsyncIterator[tuple[str, int]]:
    async def slow(request: Request) -> PlainTextResponse:
        await request.body()
        try:
            await asyncio.sleep(3)
        except asyncio.CancelledError:
            outcomes.slow.append("cancelled")
            raise
        outcomes.slow.append("finished")
        return PlainTextResponse("done")

    async def stream(_: Request) -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"x"
                await asyncio.sleep(0.1)

        return StreamingResponse(parts())

    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    app = FastAPI(
        routes=[
            Route("/slow", slow, methods=["GET", "POST"]),
            Route("/stream", stream),
            Route("/echo", echo, methods=["POST"]),
        ]
    )
    install_error_handlers(app)
    app.add_middleware(ConnectionGuard, idle_seconds=0.5, min_bytes_per_second=1024)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, http=http_protocol(0.5))
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield "127.0.0.1", server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def talk(address: tuple[str, int], data: bytes, *, hang_up_after: float | None = None) -> tuple[bytes, float]:
    reader, writer = await asyncio.open_connection(*address)
    started = time.monotonic()
    writer.write(data)
    await writer.drain()
    if hang_up_after is not None:
        await asyncio.sleep(hang_up_after)
        writer.close()
        return b"", time.monotonic() - started
    try:
        reply = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
    return reply, time.monotonic() - started


@pytest.mark.parametrize(
    "data", [b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n", b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"]
)
async def test_a_client_that_leaves_cancels_its_request(data: bytes) -> None:
    outcomes = Outcomes()
    async with front(outcomes) as address:
        await talk(address, data, hang_up_after=0.3)
        await asyncio.sleep(0.3)
    assert outcomes.slow == ["cancelled"]


async def test_a_streaming_reply_to_a_request_without_body_does_not_spin() -> None:
    async with front(Outcomes()) as address:
        # The event loop's own thread: where a receive() that never waits would spin.
        cpu = time.thread_time()
        reply, _ = await talk(address, b"GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert reply.endswith(b"1\r\nx\r\n0\r\n\r\n")
        assert time.thread_time() - cpu < 0.3


async def test_a_complete_request_gets_its_reply_and_an_unread_body_a_408() -> None:
    async with front(Outcomes()) as address:
        reply, took = await talk(
            address, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
        )
        assert reply.endswith(b"\r\n\r\n3") and took < LINGER_SECONDS / 2
        # The body never comes: 408, Connection: close, then the socket lingers and closes.
        reply, took = await talk(address, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nab")
        assert reply.startswith(b"HTTP/1.1 408 ") and b"connection: close" in reply.lower()
        assert b'"request_timeout"' in reply and took < 0.5 + LINGER_SECONDS + 1


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", b"400"),
        (b"GET /slow HTTP/1.1\r\nHo", b"408"),
        (b"", b"408"),
        # A chunked body whose chunk size is not hexadecimal, while the app reads it.
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\nzz\r\n", b"400"),
    ],
    ids=["garbage", "slow-headers", "silent", "bad-chunk"],
)
async def test_what_the_app_never_sees_gets_json(data: bytes, status: bytes, caplog) -> None:
    async with front(Outcomes()) as address:
        reply, took = await talk(address, data)
    assert reply.startswith(b"HTTP/1.1 " + status) and b"application/json" in reply, reply
    assert took < 0.5 + LINGER_SECONDS + 1
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(("uvicorn", "gateway"))]
    assert not logged, "nothing worth a traceback happened"
