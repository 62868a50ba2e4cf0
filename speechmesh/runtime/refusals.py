"""Refusals of client-streaming RPCs that reach the caller intact.

A caller whose call ends while it is still writing its upload gets gRPC's "Internal error
from Core" instead of the error that ended it (grpc/grpc#36066; seen with the gateway
streaming a file). So a streaming RPC that refuses (a bad config, an unknown model) first
reads what the caller still sends, up to the largest upload.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from speechmesh.common import limits
from speechmesh.common.errors import PayloadTooLarge, SpeechmeshError

R = TypeVar("R")


async def drain(messages: AsyncIterator[Any]) -> None:
    """Reads what the caller still sends, up to the largest upload."""
    left = limits.AUDIO_UPLOAD_MAX_BYTES
    async for message in messages:
        left -= message.ByteSize()
        if left < 0:
            return


def refusing(
    method: Callable[[Any, AsyncIterator[Any], Any], AsyncGenerator[R, None]],
) -> Callable[[Any, AsyncIterator[Any], Any], AsyncGenerator[R, None]]:
    """A streaming RPC whose refusals (bad config, unknown model) reach the caller intact."""

    @functools.wraps(method)
    async def refused(self: Any, request_iterator: AsyncIterator[Any], context: Any) -> AsyncGenerator[R, None]:
        messages = aiter(request_iterator)
        try:
            # Closed here when this generator is: `async for` alone would leave the servicer's
            # generator (and the work it holds) to the garbage collector.
            async with contextlib.aclosing(method(self, messages, context)) as replies:
                async for reply in replies:
                    yield reply
        except SpeechmeshError as error:
            if not isinstance(error, PayloadTooLarge):  # over the limit: the rest is not read
                await drain(messages)
            raise

    return refused


def refusing_unary(
    method: Callable[[Any, AsyncIterator[Any], Any], Awaitable[R]],
) -> Callable[[Any, AsyncIterator[Any], Any], Awaitable[R]]:
    """`refusing` for a client-streaming RPC with one reply."""

    @functools.wraps(method)
    async def refused(self: Any, request_iterator: AsyncIterator[Any], context: Any) -> R:
        messages = aiter(request_iterator)
        try:
            return await method(self, messages, context)
        except SpeechmeshError as error:
            if not isinstance(error, PayloadTooLarge):
                await drain(messages)
            raise

    return refused
