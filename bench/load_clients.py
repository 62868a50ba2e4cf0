"""Closed-loop load for a fixed time: N clients on keep-alive connections, each sending its
next request as soon as its last one is answered, for a warm-up and then a measured window.

Bounded by time, not by count, so a slow level cannot stretch the run. When the window
closes no request is sent any more; those in flight are awaited (not counted; at most
`DRAIN_SECONDS`, then cancelled), so the next level starts on idle services. They are not
cancelled at once: clients that leave in numbers are another test (on 2026-12-01 it
wedged the gateway's SQLite database, "database is locked" on settling credit holds).
What is counted is what is answered inside the window: successful requests (200) with their latency, every
other answer by HTTP status (or by exception name when none came). A client answered 503
or 429 waits the `Retry-After` it was given (capped) and goes on, as a polite client would.
Once a second the services' gRPC health is checked on its own channel: health must stay
fast while the engines are busy. CPU time of the mesh's processes is read at the window's
edges; the requests in flight at either edge roughly cancel out in a steady state.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import httpx
from processes import check_health, machine_cpu_seconds

Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
RETRY_AFTER_CAP_SECONDS = 2.0
HEALTH_TIMEOUT_SECONDS = 5.0
DRAIN_SECONDS = 60.0


@dataclass
class Level:
    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # successful requests, seconds
    statuses: Counter[str] = field(default_factory=Counter)  # every answer in the window
    health: dict[str, list[float]] = field(default_factory=dict)  # service -> check latencies
    unhealthy: Counter[str] = field(default_factory=Counter)  # service -> checks not SERVING
    cpu: dict[str, float] = field(default_factory=dict)  # the mesh's processes' CPU seconds in the window
    generator_cpu_seconds: float = 0.0  # this process (the clients), in the window
    machine_cpu_seconds: float = 0.0  # every process on the machine, in the window

    @property
    def other_cpu_seconds(self) -> float:
        """Work on the machine that is not this run's: it takes cores the mesh could have had."""
        return max(0.0, self.machine_cpu_seconds - self.cpu_seconds - self.generator_cpu_seconds)

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())


def _retry_after(reply: httpx.Response) -> float:
    try:
        return min(float(reply.headers.get("Retry-After", "1")), RETRY_AFTER_CAP_SECONDS)
    except ValueError:
        return 1.0


async def _client(http: httpx.AsyncClient, request: Request, level: Level, window: tuple[float, float]) -> None:
    start, end = window
    while (now := time.monotonic()) < end:
        wait = 0.0
        try:
            reply = await request(http)
            status = str(reply.status_code)
            if reply.status_code in (429, 503):
                wait = _retry_after(reply)
        except httpx.HTTPError as error:
            status = type(error).__name__
        done = time.monotonic()
        if start <= done <= end:
            level.statuses[status] += 1
            if status == "200":
                level.latencies.append(done - now)
        if wait:
            await asyncio.sleep(min(wait, max(0.0, end - done)))


async def _probe(channels: dict[str, grpc.aio.Channel], level: Level, end: float) -> None:
    while time.monotonic() < end:
        tick = time.monotonic()
        for service, channel in channels.items():
            started = time.perf_counter()
            state = await check_health(channel, HEALTH_TIMEOUT_SECONDS)
            level.health.setdefault(service, []).append(time.perf_counter() - started)
            if state != "SERVING":
                level.unhealthy[service] += 1
        await asyncio.sleep(max(0.0, tick + 1.0 - time.monotonic()))


async def run_level(
    http: httpx.AsyncClient,
    request: Request,
    clients: int,
    warmup: float,
    seconds: float,
    health: dict[str, grpc.aio.Channel],
    cpu: Callable[[], dict[str, float]],
) -> Level:
    """`clients` closed-loop clients for `warmup` + `seconds`, then the requests in flight
    are awaited."""
    level = Level(clients, seconds)
    start = time.monotonic() + warmup
    end = start + seconds
    tasks = [asyncio.create_task(_client(http, request, level, (start, end))) for _ in range(clients)]
    probe = asyncio.create_task(_probe(health, level, end))
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    cpu_start, own_start, machine_start = cpu(), time.process_time(), machine_cpu_seconds()
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    level.machine_cpu_seconds = machine_cpu_seconds() - machine_start
    level.cpu = {name: seconds - cpu_start[name] for name, seconds in cpu().items()}
    level.generator_cpu_seconds = time.process_time() - own_start
    _, late = await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
    for task in late:
        task.cancel()
    await asyncio.gather(*tasks, probe, return_exceptions=True)
    return level
