"""Per-key request limits (seed page: 'Steuersätze'): requests per minute and requests at once.

Requests per minute: the `limits` library's moving window (a request counts for exactly 60 s
after it was admitted, no burst at a fixed window's edge), in memory by default, in Redis when
`redis_url` is set so every gateway process shares one budget. Requests at once: `Slots`, a
set of the key's in-flight requests, in memory or in a Redis sorted set whose members carry a
lease the holding process renews (a process that dies frees its slots when their lease ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Protocol

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

_PREFIX = "speechmesh"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    allowed: bool
    limit: int
    remaining: int
    reset: float  # epoch seconds when the oldest request in the window stops counting

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset)),
        }

    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset - time.time()))


class RequestRate:
    """Requests per minute per key, on the moving window."""

    def __init__(self, redis_url: str | None) -> None:
        # Our pool, so that close() can let its connections go (the storage cannot).
        self._pool = _redis().ConnectionPool.from_url(redis_url) if redis_url else None
        storage: Storage = (
            RedisStorage(
                f"async+{redis_url}",
                implementation="redispy",
                key_prefix=f"{_PREFIX}-rate",
                # Passed on to redis-py's client, which takes a pool (limits types options narrowly).
                connection_pool=self._pool,  # type: ignore[arg-type]
            )
            if redis_url
            else MemoryStorage()
        )
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, key_id: int, per_minute: int) -> Window:
        """Counts a request if the window has room; the window after it."""
        allowed = await self._limiter.hit(RateLimitItemPerMinute(per_minute), str(key_id))
        return replace(await self.peek(key_id, per_minute), allowed=allowed)

    async def peek(self, key_id: int, per_minute: int) -> Window:
        """The window as it stands, without counting a request."""
        stats = await self._limiter.get_window_stats(RateLimitItemPerMinute(per_minute), str(key_id))
        return Window(stats.remaining > 0, per_minute, max(0, stats.remaining), stats.reset_time)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


class Slots(Protocol):
    """Requests of one key in flight at once, across every process sharing the store."""

    async def acquire(self, key_id: int, limit: int, slot: str) -> bool: ...

    async def release(self, key_id: int, slot: str) -> None: ...

    async def close(self) -> None: ...


class MemorySlots:
    def __init__(self) -> None:
        self._held: dict[int, set[str]] = {}

    async def acquire(self, key_id: int, limit: int, slot: str) -> bool:
        held = self._held.setdefault(key_id, set())
        if len(held) >= limit:
            return False
        held.add(slot)
        return True

    async def release(self, key_id: int, slot: str) -> None:
        held = self._held.get(key_id)
        if held is not None:
            held.discard(slot)
            if not held:
                del self._held[key_id]

    async def close(self) -> None:
        pass


# Drops expired members, then adds the slot if fewer than the limit remain: one atomic step.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisSlots:
    """Slots in a sorted set per key (member: the request, score: its lease's end)."""

    def __init__(self, redis_url: str, lease_seconds: float = 60.0) -> None:
        self._redis = _redis().Redis.from_url(redis_url)
        self._lease = lease_seconds
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._mine: dict[str, int] = {}
        self._renewer: asyncio.Task[None] | None = None

    async def acquire(self, key_id: int, limit: int, slot: str) -> bool:
        now = time.time()
        name = _slots_key(key_id)
        args: list[float | int | str] = [now, now + self._lease, limit, slot, math.ceil(self._lease * 2)]
        if not await self._acquire(keys=[name], args=args):
            return False
        self._mine[slot] = key_id
        if self._renewer is None:
            self._renewer = asyncio.get_running_loop().create_task(self._renew())
        return True

    async def release(self, key_id: int, slot: str) -> None:
        self._mine.pop(slot, None)
        await self._redis.zrem(_slots_key(key_id), slot)

    async def _renew(self) -> None:
        """Extends the lease of every slot this process holds, a third of a lease apart, and
        the key's set with it (Redis drops the whole set at its expiry)."""
        while True:
            await asyncio.sleep(self._lease / 3)
            until = time.time() + self._lease
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for slot, key_id in list(self._mine.items()):
                        # XX: only a slot still there (its request may have ended meanwhile).
                        pipe.zadd(_slots_key(key_id), {slot: until}, xx=True)
                        pipe.expire(_slots_key(key_id), math.ceil(self._lease * 2))
                    await pipe.execute()
            except Exception:  # Redis away for a moment: the leases last three renewals
                log.warning("renewing concurrency slots in Redis failed", exc_info=True)

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        await self._redis.aclose()


def _redis() -> ModuleType:
    """redis-py's asyncio module, imported only where Redis is configured (it loads the
    OpenTelemetry SDK with it, which a gateway without Redis does not need)."""
    import redis.asyncio

    return redis.asyncio


def _slots_key(key_id: int) -> str:
    return f"{_PREFIX}:slots:{key_id}"


def open_slots(redis_url: str | None) -> Slots:
    return RedisSlots(redis_url) if redis_url else MemorySlots()
