"""What the platform's admission costs a request: the rate limit, the concurrency slot and the
credits (hold before the work, charge after), against what the request's work costs, in the
same run.

Variants, each a full admit -> reserve -> settle cycle of `PlanPolicy` on a Pro-like key
(limits high enough never to refuse), run by N concurrent tasks for a fixed time:
- `free`: admitted and settled, nothing billed (what /v1/models/ costs);
- `billed`: a TTS request held and charged (two database transactions);
- with `--servers`: the same on Redis (limits, slots) and PostgreSQL (credits), started here
  from the Debian packages as the tests do.
The baseline is the work itself: one Piper synthesis of a 60-character sentence, called
directly. CPU per cycle is `time.process_time` (this process, every thread) over the cycles.

    .venv/bin/python -m bench.admission [--seconds 3] [--concurrency 1 16] [--servers]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from gateway.admission import Outcome, Ticket
from gateway.auth import Caller
from gateway.plans import PLANS
from gateway.policy import PlanPolicy
from gateway.ratelimit import RequestRate, open_slots
from gateway.settings import GatewaySettings
from gateway.store.keys import ApiKey
from gateway.store.stores import Stores, open_stores

SENTENCE = "The quick brown fox jumps over the lazy dog near the river."
# Pro's shape with limits no bench reaches: what is measured is the bookkeeping, not refusals.
PLAN = replace(PLANS["pro"], requests_per_minute=10**9, concurrent_requests=10**6)


class KnownTiers:
    """The catalog's answer without a catalog: the bench has no services."""

    async def of(self, model: str) -> str | None:
        return "free"


async def _cycle(policy: PlanPolicy, caller: Caller, number: int, billed: bool) -> None:
    ticket = Ticket(caller, "/v1/tts/" if billed else "/v1/models/", policy, f"r{number}")
    await policy.admit(ticket)
    if billed:
        await ticket.meter("characters", len(SENTENCE), model="piper")
    await policy.settle(ticket, Outcome.SUCCEEDED)


async def _measure(policy: PlanPolicy, caller: Caller, tasks: int, seconds: float, billed: bool):
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await _cycle(policy, caller, done, billed)
            done += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return done / (time.perf_counter() - wall), (time.process_time() - cpu) / done


@contextlib.asynccontextmanager
async def _stores(folder: Path, servers: bool) -> AsyncIterator[tuple[str, Stores, str | None]]:
    if not servers:
        settings = GatewaySettings(database_path=folder / "bench.db")
        stores = await open_stores(settings)
        try:
            yield "memory + SQLite", stores, None
        finally:
            await stores.close()
        return
    from tests.servers import postgres_server, redis_server

    async with postgres_server(folder) as database_url, redis_server(folder) as redis_url:
        stores = await open_stores(GatewaySettings(database_path=folder / "x.db", database_url=database_url))
        try:
            yield "Redis + PostgreSQL", stores, redis_url
        finally:
            await stores.close()


def _piper_cpu_seconds(runs: int = 5) -> float:
    from services.tts.engines.piper import PiperSynthesizer
    from services.tts.settings import PiperSettings
    from services.tts.synthesizer import SynthesisOptions

    engine = PiperSynthesizer(PiperSettings(threads=1))
    engine.load()
    voice = engine.voices()[0].id
    list(engine.synthesize(SENTENCE, SynthesisOptions(voice=voice, language="en", speed=1.0)))  # warm
    started = time.process_time()
    for _ in range(runs):
        list(engine.synthesize(SENTENCE, SynthesisOptions(voice=voice, language="en", speed=1.0)))
    return (time.process_time() - started) / runs


async def main(seconds: float, concurrency: list[int], servers: bool) -> None:
    piper = _piper_cpu_seconds()
    print(f"baseline: one Piper synthesis of {len(SENTENCE)} characters, direct: {piper * 1000:.1f} ms CPU")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        async with _stores(folder, servers) as (where, stores, redis_url):
            key, _ = await stores.keys.create("bench", "pro")
            await stores.credits.grant(key.id, 10**12, "bench")
            caller = Caller(ApiKey(key.id, key.prefix, key.name, "pro", key.created_at, None), PLAN)
            rate, slots = RequestRate(redis_url), open_slots(redis_url)
            policy = PlanPolicy(rate, slots, stores.credits, KnownTiers(), 3600)  # type: ignore[arg-type]
            print(f"{where:>20} {'tasks':>5} {'cycles/s':>9} {'CPU ms/cycle':>13} {'vs Piper CPU':>13}")
            for tasks in concurrency:
                for billed in (False, True):
                    per_second, cpu = await _measure(policy, caller, tasks, seconds, billed)
                    label = "billed" if billed else "free"
                    ratio = cpu / piper
                    print(f"{label:>20} {tasks:>5} {per_second:>9.0f} {cpu * 1000:>13.2f} {ratio:>12.1%}")
            await slots.close()
            await rate.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--servers", action="store_true", help="Redis and PostgreSQL instead of memory and SQLite")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency, args.servers))
