"""Sending audio to the STT service: the config, then the file in 1 MiB chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request

from gateway.uploads import UploadedFile
from speechmesh.common.chunks import chunked
from speechmesh.v1 import stt_pb2


def seconds(milliseconds: int) -> float:
    return round(milliseconds / 1000, 3)


async def recognize(
    request: Request, config: stt_pb2.RecognitionConfig, audio: UploadedFile | bytes
) -> stt_pb2.RecognizeResponse:
    """Transcribes an upload, or audio the gateway already holds (e.g. speech it synthesized)."""

    async def messages() -> AsyncIterator[stt_pb2.RecognizeRequest]:
        yield stt_pb2.RecognizeRequest(config=config)
        for chunk in audio.chunks() if isinstance(audio, UploadedFile) else chunked(audio):
            yield stt_pb2.RecognizeRequest(audio_content=chunk)

    stub = request.app.state.upstreams.stt
    return await stub.Recognize(messages(), timeout=request.app.state.settings.stt_timeout_seconds)
