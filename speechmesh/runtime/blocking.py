"""Running CPU-bound engine work off the event loop, and stopping it when the caller leaves.

Model inference holds a core for a long time; done on the event loop it would freeze
health checks and every other call. All engine calls go through one bounded thread
pool per service (onnxruntime and CTranslate2 release the GIL while they compute).

A thread cannot be stopped from outside, so each call runs with its own cancellation
token (`speechmesh.common.cancel`): when the awaiting task is cancelled (gRPC aio
cancels a handler whose client cancelled, disconnected or ran past its deadline), the
token is tripped and the work ends at its next `checkpoint()` instead of running on for
nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from speechmesh.common import cancel
from speechmesh.runtime.admission import Admission

T = TypeVar("T")

_DONE = object()


class Blocking:
    def __init__(self, workers: int, admission: Admission | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="engine")
        self._admission = admission

    def admit(self, model: str) -> contextlib.AbstractAsyncContextManager[None]:
        """A turn of `model`'s work (`Admission.admit`); unbounded for a pool without one."""
        if self._admission is None:
            return contextlib.nullcontext()
        return self._admission.admit(model)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` in the pool; cancelling the awaiting task trips its token."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        token = threading.Event()
        try:
            return await loop.run_in_executor(self._pool, context.run, cancel.bound, token, fn, *args)
        except asyncio.CancelledError:
            token.set()
            raise

    async def iterate(self, iterator: Iterator[T]) -> AsyncGenerator[T, None]:
        """Pulls items of a blocking iterator in the pool, one at a time.

        When the consumer stops early (a cancelled call), no further item is pulled and
        the token of the item in progress is tripped, so the work stops at its next
        checkpoint; the iterator is closed in the pool once that item's thread has let
        go of it.
        """
        token = threading.Event()
        step: Future[object] | None = None
        try:
            while True:
                step = self._pool.submit(contextvars.copy_context().run, cancel.bound, token, next, iterator, _DONE)
                item = await asyncio.wrap_future(step)
                if item is _DONE:
                    return
                yield item  # type: ignore[misc]
        finally:
            token.set()
            close = getattr(iterator, "close", None)
            if close is not None and step is not None:
                step.add_done_callback(lambda _: self._submit_quietly(close))

    def _submit_quietly(self, fn: Callable[[], object]) -> None:
        with contextlib.suppress(RuntimeError):  # the pool is already shut down
            self._pool.submit(fn)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
