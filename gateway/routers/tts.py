"""POST /v1/tts/: text to speech, as one file or streamed while it is synthesized."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from gateway.auth import Caller, authenticate
from gateway.routers import both
from gateway.schemas import TtsRequest
from gateway.synthesis import check_text_length, stream, synthesize
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


@both(router, "POST", "/v1/tts/", response_class=Response, responses={200: {"content": {"audio/mpeg": {}}}})
async def text_to_speech(body: TtsRequest, request: Request, caller: Caller = Depends(authenticate)) -> Response:
    check_text_length(caller, body.text, "text")
    media_type = FORMATS[body.format].mime_type
    if not body.stream:
        audio, result = await synthesize(request, synthesize_request(body))
        headers = {"X-Model": result.model, "X-Voice": result.voice, "X-Language": result.language}
        return Response(audio, media_type=media_type, headers=headers)
    return StreamingResponse(await stream(request, synthesize_request(body)), media_type=media_type)
