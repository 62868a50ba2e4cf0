"""The request stream of every config-first RPC: the config, then the audio in chunks."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

from speechmesh.common.chunks import chunked

# Audio to send: bytes held in memory, or chunks from a file or a network stream.
AudioSource = bytes | Iterable[bytes] | AsyncIterable[bytes]
M = TypeVar("M")


async def _chunks(audio: AudioSource) -> AsyncIterator[bytes]:
    if isinstance(audio, bytes):
        for chunk in chunked(audio):
            yield chunk
    elif isinstance(audio, AsyncIterable):
        async for chunk in audio:
            yield chunk
    else:
        for chunk in audio:
            yield chunk


async def config_then_audio(message: Callable[..., M], audio: AudioSource, **config: Any) -> AsyncIterator[M]:
    """`message(**config)` (its config field), then `message(audio_content=chunk)` per chunk of `audio`."""
    yield message(**config)
    async for chunk in _chunks(audio):
        yield message(audio_content=chunk)
