"""Audio a JSON answer points at (`audio_url`): kept in the result store for its owner's key
only, 24 hours, served by GET /v1/results/{id}."""

from __future__ import annotations

import tempfile

from fastapi import Request

from gateway.store.results import new_id
from speechmesh.common.audio.formats import FORMATS

# Replies and translations are minutes of compressed speech at most; longer ones go to disk.
_MEMORY_BYTES = 4 * 1024 * 1024


async def store_audio(request: Request, key_id: int, kind: str, audio: bytes, fmt: str) -> str:
    """Stores `audio` (format `fmt`) as a new result of `kind` ("chat", "translate") and
    returns its URL."""
    result_id = new_id(kind)
    with tempfile.SpooledTemporaryFile(max_size=_MEMORY_BYTES) as spool:
        spool.write(audio)
        spool.seek(0)
        await request.app.state.stores.results.put(
            result_id, key_id, FORMATS[fmt].mime_type, f"{result_id}.{fmt}", spool
        )
    settings = request.app.state.settings
    base = settings.public_url or str(request.base_url).rstrip("/")
    return f"{base}/v1/results/{result_id}"
