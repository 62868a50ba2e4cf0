"""Clients who hang up mid-request: their requests' database work still ends (a transaction
cut by the cancellation kept SQLite's write lock, and every later request waited 15 s and
failed), and credits held for them go back. Real TTS service and gateway, on SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from tests.conftest import running_gateway

TEXT = "The quick brown fox jumps over the lazy dog. " * 3


async def test_requests_cut_by_hangups_leave_the_database_writable_and_hold_nothing(
    tts_port: int, tmp_path: Path
) -> None:
    async with running_gateway(f"127.0.0.1:{tts_port}", tmp_path / "gateway.db") as gateway:
        await _hang_up_and_check(gateway)


async def _hang_up_and_check(gateway) -> None:  # type: ignore[no-untyped-def]
    key, secret = await gateway.keys.create("hangups", "internal")
    await gateway.stores.credits.grant(key.id, 10_000, "test")
    body = {"model": "piper", "text": TEXT, "format": "wav"}
    async with gateway.client(secret) as http:
        for wait in (0.05, 0.15, 0.3):  # cut in admission, in synthesis, in the response
            requests = [asyncio.create_task(http.post("/v1/tts/", json=body)) for _ in range(16)]
            await asyncio.sleep(wait)
            for request in requests:
                request.cancel()
            await asyncio.gather(*requests, return_exceptions=True)
            started = time.perf_counter()
            response = await http.post("/v1/tts/", json=body)
            assert response.status_code == 200, response.text
            # A write that waits on a lock held by a cut transaction waits 15 s, then fails.
            assert time.perf_counter() - started < 10
    async with asyncio.timeout(30):
        while True:
            with sqlite3.connect(gateway.database) as database:
                (held,) = database.execute("SELECT count(*) FROM credit_holds WHERE key_id = ?", (key.id,)).fetchone()
            if not held:
                break
            await asyncio.sleep(0.1)
    # Every request settled (the last one just after its response): only what was served is charged.
    charged = sum(entry.amount for entry in await gateway.stores.credits.ledger(key.id) if entry.kind == "charge")
    assert await gateway.stores.credits.balance(key.id) == 10_000 - charged
