"""What the bench scripts share: a gateway in this process with an `internal` key (no request
limits, credits enough for any run: what is measured is the work, not the plan), and a
process's memory."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from gateway.background import serve_in_background
from gateway.settings import GatewaySettings
from gateway.store.stores import open_stores

BENCH_CREDITS = 10**9


async def bench_key(database: Path, plan: str = "internal") -> str:
    """A new API key in the gateway database at `database`, with credits for any run."""
    stores = await open_stores(GatewaySettings(database_path=database))
    try:
        key, secret = await stores.keys.create("bench", plan)
        await stores.credits.grant(key.id, BENCH_CREDITS, "bench")
        return secret
    finally:
        await stores.close()


@contextlib.asynccontextmanager
async def gateway_client(timeout: float = 600, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An authenticated client of a gateway with these settings (tts_address=..., tts_routes=...)."""
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "bench.db"
        config = GatewaySettings(database_path=database, log_level="WARNING", **settings)
        async with serve_in_background(config) as base_url:
            key = await bench_key(database)
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout) as http:
                yield http


def memory_mib(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MiB of a process, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
