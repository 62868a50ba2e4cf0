"""Reading an audio file sent as a client stream: config first, then `audio_content` chunks.

The bytes are spooled, not joined: up to a few MiB stay in memory, a larger upload
(transcriptions accept 100 MB) goes to a temporary file, so a handful of concurrent
uploads cannot hold gigabytes, and joining the chunks cannot double the peak.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from typing import IO, Any

from speechmesh.common.errors import InvalidArgument, PayloadTooLarge

# Uploads up to this size never touch the disk: a minute of WAV, an hour of low-rate MP3.
SPOOL_MEMORY_BYTES = 8 * 1024 * 1024


async def read_audio(messages: AsyncIterator[Any], limit: int, param: str) -> IO[bytes]:
    """The bytes of every following message as a file positioned at its start, refused
    once they pass `limit`. The caller closes it (the spool file is deleted then)."""
    # Handed to the caller, who closes it.
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES, prefix="speechmesh-upload-")  # noqa: SIM115
    try:
        size = 0
        async for message in messages:
            if not message.HasField("audio_content"):
                raise InvalidArgument("Only the first message may carry the config.")
            size += len(message.audio_content)
            if size > limit:
                raise PayloadTooLarge(
                    f"The audio file is larger than {limit // (1024 * 1024)} MB.", max_bytes=str(limit), param=param
                )
            spool.write(message.audio_content)
        if not size:
            raise InvalidArgument("No audio was sent.", param=param)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool
