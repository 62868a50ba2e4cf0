"""Reading an audio file sent as a client stream: config first, then `audio_content` chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from speechmesh.common.errors import InvalidArgument, PayloadTooLarge


async def read_audio(messages: AsyncIterator[Any], limit: int, param: str) -> bytes:
    """The bytes of every following message, refused once they pass `limit`."""
    parts: list[bytes] = []
    size = 0
    async for message in messages:
        if not message.HasField("audio_content"):
            raise InvalidArgument("Only the first message may carry the config.")
        size += len(message.audio_content)
        if size > limit:
            raise PayloadTooLarge(
                f"The audio file is larger than {limit // (1024 * 1024)} MB.", max_bytes=str(limit), param=param
            )
        parts.append(message.audio_content)
    if not size:
        raise InvalidArgument("No audio was sent.", param=param)
    return b"".join(parts)
