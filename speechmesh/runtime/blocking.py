"""Running CPU-bound engine work off the event loop.

Model inference holds a core for a long time; done on the event loop it would freeze
health checks and every other call. All engine calls go through one bounded thread
pool per service (onnxruntime and CTranslate2 release the GIL while they compute).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
        so the work stops after the item in progress; the iterator is closed in the
        pool once that item's thread has let go of it.
        """
        step: Future[object] | None = None
        try:
            while True:
                step = self._pool.submit(contextvars.copy_context().run, next, iterator, _DONE)
                item = await asyncio.wrap_future(step)
                if item is _DONE:
                    return
                yield item  # type: ignore[misc]
        finally:
            close = getattr(iterator, "close", None)
            if close is not None and step is not None:
                step.add_done_callback(lambda _: self._submit_quietly(close))

    def _submit_quietly(self, fn: Callable[[], object]) -> None:
        with contextlib.suppress(RuntimeError):  # the pool is already shut down
            self._pool.submit(fn)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
