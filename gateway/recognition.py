"""Sending an uploaded file to the STT service: the config, then the file in 1 MiB chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request

from gateway.uploads import UploadedFile
from speechmesh.v1 import stt_pb2


def seconds(milliseconds: int) -> float:
    return round(milliseconds / 1000, 3)


async def recognize(
    request: Request, config: stt_pb2.RecognitionConfig, upload: UploadedFile
) -> stt_pb2.RecognizeResponse:
    async def messages() -> AsyncIterator[stt_pb2.RecognizeRequest]:
        yield stt_pb2.RecognizeRequest(config=config)
        for chunk in upload.chunks():
            yield stt_pb2.RecognizeRequest(audio_content=chunk)

    stub = request.app.state.upstreams.stt
    return await stub.Recognize(messages(), timeout=request.app.state.settings.stt_timeout_seconds)
