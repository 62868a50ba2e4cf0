"""OpenAI-compatible POST /v1/audio/speech: OpenAI's models and voices mapped to real ones.

OpenAI's voices are mapped by character to the installed voices (table below), first
choice first; a choice whose voice is not loaded falls through to the next. OpenAI's
model names (tts-1, tts-1-hd, gpt-4o-mini-tts) all mean "the voice decides". A
speechmesh model id keeps the request on that model (its default voice unless a
speechmesh voice id is given); a speechmesh voice id is used as it is. Audio is
streamed as it is synthesized (as OpenAI does); `stream_format=sse` sends
`speech.audio.delta` events with base64 audio, then `speech.audio.done`.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from gateway.admission import Ticket, admit
from gateway.body import json_body
from gateway.clients import tts_client
from gateway.openapi import AUTHENTICATED, BODY_ERRORS, binary, errors, request_body
from gateway.routers import both
from gateway.schemas import OpenAISpeechRequest
from gateway.streaming import ClosingStreamingResponse
from gateway.synthesis import priced_model, spoke
from speechmesh.clients.tts import TtsClient
from speechmesh.common.audio.formats import FORMATS
from speechmesh.convert import ENCODING_BY_FORMAT
from speechmesh.v1 import common_pb2, tts_pb2

router = APIRouter()
_BODY = json_body(OpenAISpeechRequest)

JOE = ("piper", "en_US-joe-medium")
KUMO = ("kokoro", "jm_kumo")
# OpenAI voice -> (model, voice) choices, by the voice's character (Kokoro's voices are
# four women and a man; Piper's Joe is a man).
VOICES: dict[str, tuple[tuple[str, str], ...]] = {
    "alloy": (("kokoro", "jf_alpha"), JOE),
    "ash": (KUMO, JOE),
    "ballad": (JOE, KUMO),
    "coral": (("kokoro", "jf_gongitsune"), JOE),
    "echo": (KUMO, JOE),
    "fable": (JOE, KUMO),
    "nova": (("kokoro", "jf_nezumi"), JOE),
    "onyx": (JOE, KUMO),
    "sage": (("kokoro", "jf_tebukuro"), JOE),
    "shimmer": (("kokoro", "jf_alpha"), JOE),
    "verse": (KUMO, JOE),
    "marin": (("kokoro", "jf_nezumi"), JOE),
    "cedar": (KUMO, JOE),
}
OPENAI_MODELS = {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-tts"}
OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
# Each server-sent event (OpenAPI 3.2's shape: its fields) carries JSON: audio deltas, then
# one done event with the usage.
SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"enum": ["speech.audio.delta", "speech.audio.done"]},
                    "audio": {"type": "string", "contentEncoding": "base64"},
                    "usage": {"type": "object"},
                },
            },
        }
    },
}
# OpenAI's `pcm` is headerless 16-bit little-endian mono at 24 kHz.
PCM_SAMPLE_RATE = 24_000


def _choices(model: str, voice: str) -> list[tuple[str, str]]:
    openai_model = model in OPENAI_MODELS
    if voice not in VOICES:
        return [("" if openai_model else model, voice)]
    if openai_model:
        return list(VOICES[voice])
    return [choice for choice in VOICES[voice] if choice[0] == model] or [(model, "")]


async def _resolve(tts: TtsClient, model: str, voice: str) -> tuple[str, str]:
    choices = _choices(model, voice)
    if len(choices) == 1:
        return choices[0]
    voices = await tts.voices(tts_pb2.ListVoicesRequest())
    loaded = {(v.model, v.id) for v in voices}
    return next((choice for choice in choices if choice in loaded), choices[-1])


async def _events(chunks: AsyncGenerator[bytes, None], characters: int) -> AsyncIterator[bytes]:
    async with contextlib.aclosing(chunks):  # closed with the events: the upstream call ends too
        async for chunk in chunks:
            event = {"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()}
            yield f"data: {json.dumps(event)}\n\n".encode()
    usage = {"input_tokens": characters, "output_tokens": 0, "total_tokens": characters}
    yield f"data: {json.dumps({'type': 'speech.audio.done', 'usage': usage})}\n\n".encode()


@both(
    router,
    "POST",
    "/v1/audio/speech",
    response_class=Response,
    responses={
        200: {
            "description": "Audio as it is synthesized, or with stream_format=sse server-sent events.",
            "content": {
                **binary(*sorted({FORMATS[name].mime_type for name in OPENAI_FORMATS}))["content"],
                "text/event-stream": {"schema": SSE_EVENT},
            },
        },
        **errors(*BODY_ERRORS),
    },
    openapi_extra={**request_body(OpenAISpeechRequest, "application/json"), **AUTHENTICATED},
)
async def speech(
    ticket: Ticket = Depends(admit),
    body: OpenAISpeechRequest = Depends(_BODY),
    tts: TtsClient = Depends(tts_client),
) -> Response:
    """OpenAI-compatible text to speech.

    OpenAI's `/v1/audio/speech`, for the official SDKs: its voices map to installed voices of
    a like character, its model names let the voice decide; speechmesh model and voice ids
    work as they are. The audio streams as it is synthesized. Priced as `/v1/tts/`."""
    model, voice = await _resolve(tts, body.model, body.voice)
    await ticket.meter("characters", len(body.input), param="input", model=await priced_model(tts, model, voice))
    fmt = FORMATS[body.response_format]
    synthesis = tts_pb2.SynthesizeRequest(
        text=body.input,
        model=model,
        voice=voice,
        speed=body.speed,
        output=common_pb2.AudioOutputSpec(
            encoding=ENCODING_BY_FORMAT[body.response_format],
            sample_rate_hertz=PCM_SAMPLE_RATE if body.response_format == "pcm" else 0,
        ),
    )
    plan, chunks = await tts.stream(synthesis)
    await spoke(ticket, plan)
    if body.stream_format == "sse":
        return ClosingStreamingResponse(_events(chunks, len(body.input)), media_type="text/event-stream")
    return ClosingStreamingResponse(chunks, media_type=fmt.mime_type)
