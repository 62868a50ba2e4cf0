"""Running CPU-bound engine work off the event loop.

Model inference holds a core for a long time; done on the event loop it would freeze
health checks and every other call. All engine calls go through one bounded thread
pool per service (onnxruntime and CTranslate2 release the GIL while they compute).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class Blocking:
    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="engine")

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return await loop.run_in_executor(self._pool, context.run, fn, *args)

    async def iterate(self, iterator: Iterator[T]) -> AsyncIterator[T]:
        """Pulls items of a blocking iterator in the pool, one at a time.

        When the consumer stops early (a cancelled call), no further item is pulled,
        so the work stops after the item in progress.
        """
        try:
            while True:
                item = await self.run(next, iterator, _DONE)
                if item is _DONE:
                    return
                yield item  # type: ignore[misc]
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                await self.run(close)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
