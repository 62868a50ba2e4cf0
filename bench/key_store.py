"""What the async key store costs and buys: `SqlKeyStore.lookup` (SQLAlchemy async engine,
aiosqlite's thread) and `CachedKeyStore` in front of it (what the gateway uses) against the
direct call they replaced (sqlite3 on the event loop), in the same run, on one database file.

For each, N concurrent lookups of live keys for a fixed time: lookups per second, and the
event loop's longest stall meanwhile (a ticker that should wake every millisecond: what every
other request on the gateway waits).

    .venv/bin/python -m bench.key_store [--seconds 3] [--concurrency 1 16]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from gateway.settings import GatewaySettings
from gateway.store.keys import SqlKeyStore
from gateway.store.stores import open_stores

KEYS = 200


async def _ticker(stop: asyncio.Event) -> float:
    """The longest time the loop took to run a task that asked to wake after 1 ms."""
    worst = 0.0
    while not stop.is_set():
        asked = time.perf_counter()
        await asyncio.sleep(0.001)
        worst = max(worst, time.perf_counter() - asked - 0.001)
    return worst


async def _measure(lookup: Callable[[str], Awaitable[object]], secrets: list[str], tasks: int, seconds: float):
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(stop))
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        index = offset
        while time.perf_counter() < deadline:
            # A request yields to the loop between its steps; a lookup that never waits
            # (sqlite3 on the loop, a cache hit) would otherwise starve the ticker.
            await asyncio.sleep(0)
            assert await lookup(secrets[index % len(secrets)]) is not None
            done += 1
            index += tasks

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(tasks)))
    elapsed = time.perf_counter() - started
    stop.set()
    return done / elapsed, await ticker


async def main(seconds: float, concurrency: list[int]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "bench.db"
        stores = await open_stores(GatewaySettings(database_path=database))
        secrets = [(await stores.keys.create(f"k{i}", "pro"))[1] for i in range(KEYS)]
        direct = sqlite3.connect(database, check_same_thread=False)

        async def on_loop(secret: str) -> object:
            digest = hashlib.sha256(secret.encode()).hexdigest()
            return direct.execute(
                "SELECT id, prefix, name, plan, created_at, revoked_at FROM api_keys"
                " WHERE key_hash = ? AND revoked_at IS NULL",
                (digest,),
            ).fetchone()

        print(f"{'lookups':>16} {'tasks':>3} {'per s':>9} {'worst loop stall ms':>20}")
        for tasks in concurrency:
            rows = {}
            variants = (
                ("sqlite3 on loop", on_loop),
                ("SqlKeyStore", SqlKeyStore(stores.engine).lookup),
                ("CachedKeyStore", stores.keys.lookup),
            )
            for name, lookup in variants:
                rows[name] = await _measure(lookup, secrets, tasks, seconds)
                rate, stall = rows[name]
                print(f"{name:>16} {tasks:>3} {rate:>9.0f} {stall * 1000:>20.2f}")
            for name in ("SqlKeyStore", "CachedKeyStore"):
                ratio = rows[name][0] / rows["sqlite3 on loop"][0]
                print(f"  {name} / sqlite3 on loop, {tasks} concurrent: {ratio:.2f}x the lookups per second")
        direct.close()
        await stores.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency))
