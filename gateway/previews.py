"""Voice previews, synthesized once per voice and gateway process and then served from memory.

Requests for a preview that is still being made wait for that one synthesis instead of
starting their own, and previews are made two at a time at most, so asking for previews,
however often, costs at most one synthesis of a short sentence per voice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

_CONCURRENT = 2


class PreviewCache:
    def __init__(self) -> None:
        self._audio: dict[str, bytes] = {}
        self._pending: dict[str, asyncio.Task[bytes]] = {}
        self._gate = asyncio.Semaphore(_CONCURRENT)

    async def get(self, voice_id: str, make: Callable[[], Awaitable[bytes]]) -> bytes:
        """The preview of `voice_id`, made by `make` if no other request is making it."""
        if voice_id in self._audio:
            return self._audio[voice_id]
        task = self._pending.get(voice_id)
        if task is None:
            task = asyncio.create_task(self._make(voice_id, make))
            task.add_done_callback(_retrieve)
            self._pending[voice_id] = task
        # A client that leaves does not cancel the synthesis others may be waiting for.
        return await asyncio.shield(task)

    async def _make(self, voice_id: str, make: Callable[[], Awaitable[bytes]]) -> bytes:
        try:
            async with self._gate:
                audio = await make()
            self._audio[voice_id] = audio
            return audio
        finally:
            del self._pending[voice_id]

    def close(self) -> None:
        """Stops the previews being made (the gateway is shutting down)."""
        for task in self._pending.values():
            task.cancel()


def _retrieve(task: asyncio.Task[bytes]) -> None:
    # A failure nobody waited for any more is not worth a "never retrieved" warning.
    with contextlib.suppress(BaseException):
        task.exception()
