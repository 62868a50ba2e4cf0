"""Serving the gateway inside an already running event loop, on a free loopback port.

Used where the gateway runs beside other in-process servers: tests and bench/.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from opentelemetry.trace import TracerProvider

from gateway.app import create_app
from gateway.http_protocol import http_protocol
from gateway.settings import GatewaySettings


@contextlib.asynccontextmanager
async def serve_in_background(
    settings: GatewaySettings, tracer_provider: TracerProvider | None = None
) -> AsyncIterator[str]:
    """Yields the base URL of a gateway bound to 127.0.0.1 on a free port."""
    config = uvicorn.Config(
        create_app(settings, tracer_provider),
        host="127.0.0.1",
        port=0,
        log_config=None,
        lifespan="on",
        http=http_protocol(settings.header_timeout_seconds),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            raise RuntimeError("the gateway failed to start")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
