"""A private event loop on a thread of its own, for the sync gRPC client to run the async one on.

So the sync client has no gRPC code of its own: routing, deadlines, the channel's retry
policy and the error mapping are the async client's, once. The loop and its channels
belong to one sync client and are never shared with the caller's own loop (a gRPC aio
channel works only on the loop it was made on).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="speechmesh-client", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """The coroutine's result, run on the loop; the caller's thread waits for it."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:
            # Interrupted while waiting (Ctrl-C): the call on the loop stops too.
            future.cancel()
            raise

    def iterate(self, items: AsyncGenerator[T, None]) -> Iterator[T]:
        """The async generator's items, one loop round trip each; closing this iterator (a
        caller who leaves the loop) closes the generator on its loop."""

        async def step() -> list[T]:
            """The next item, or none at the end."""
            try:
                return [await anext(items)]
            except StopAsyncIteration:
                return []

        try:
            while batch := self.run(step()):
                yield from batch
        finally:
            # A generator left open until after its client closed has no loop to close on.
            if not self._loop.is_closed():
                self.run(items.aclose())

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
