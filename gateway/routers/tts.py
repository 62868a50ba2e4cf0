"""POST /v1/tts/: text to speech, as one file or streamed while it is synthesized."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from gateway.auth import Caller, authenticate
from gateway.errors import ApiError
from gateway.routers import both
from gateway.schemas import TtsRequest
from speechmesh.common.audio import FORMATS
from speechmesh.convert import ENCODING_BY_FORMAT
from speechmesh.v1 import common_pb2, tts_pb2

router = APIRouter()


def synthesize_request(body: TtsRequest) -> tts_pb2.SynthesizeRequest:
    return tts_pb2.SynthesizeRequest(
        text=body.text,
        model=body.model or "",
        voice=body.voice or "",
        language=body.language or "",
        speed=body.speed,
        output=common_pb2.AudioOutputSpec(encoding=ENCODING_BY_FORMAT[body.format]),
    )


async def collect(call: grpc.aio.UnaryStreamCall) -> tuple[bytes, tts_pb2.SynthesisResult]:
    """The whole file and its result from a Synthesize call."""
    parts: list[bytes] = []
    result = tts_pb2.SynthesisResult()
    async for message in call:
        if message.HasField("audio_content"):
            parts.append(message.audio_content)
        else:
            result = message.result
    return b"".join(parts), result


@both(router, "POST", "/v1/tts/", response_class=Response, responses={200: {"content": {"audio/mpeg": {}}}})
async def text_to_speech(body: TtsRequest, request: Request, caller: Caller = Depends(authenticate)) -> Response:
    if len(body.text) > caller.plan.max_text_chars:
        raise ApiError(
            400,
            "bad_request",
            f"'text' is {len(body.text)} characters; the {caller.plan.name} plan allows {caller.plan.max_text_chars}.",
            param="text",
        )
    stub = request.app.state.upstreams.tts
    timeout = request.app.state.settings.rpc_timeout_seconds
    media_type = FORMATS[body.format].mime_type
    if not body.stream:
        audio, result = await collect(stub.Synthesize(synthesize_request(body), timeout=timeout))
        return Response(audio, media_type=media_type, headers={"X-Model": result.model, "X-Voice": result.voice})

    call = stub.SynthesizeStream(synthesize_request(body), timeout=timeout)
    messages = aiter(call)
    # Wait for the first message so a bad request still gets its error status.
    first = await anext(messages, None)
    return StreamingResponse(_audio(first, messages, call), media_type=media_type)


async def _audio(
    first: tts_pb2.SynthesizeResponse | None,
    messages: AsyncIterator[tts_pb2.SynthesizeResponse],
    call: grpc.aio.UnaryStreamCall,
) -> AsyncIterator[bytes]:
    try:
        message = first
        while message is not None:
            if message.HasField("audio_content"):
                yield message.audio_content
            message = await anext(messages, None)
    finally:
        # A client that went away cancels synthesis upstream.
        call.cancel()
