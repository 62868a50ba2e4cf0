"""POST /v1/tts/: text to speech, as one file or streamed while it is synthesized."""

from __future__ import annotations

import base64

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from gateway.admission import Ticket, admit
from gateway.alignment import TimedWord, align
from gateway.body import json_body
from gateway.clients import stt_client, tts_client
from gateway.errors import ApiError
from gateway.openapi import AUTHENTICATED, BODY_ERRORS, binary, errors, request_body
from gateway.routers import both
from gateway.schemas import TimedWordOut, TtsRequest, TtsTimestampsOut
from gateway.streaming import ClosingStreamingResponse
from gateway.synthesis import priced_model, spoke
from gateway.units import seconds
from speechmesh.clients.stt import SttClient
from speechmesh.clients.tts import TtsClient
from speechmesh.common.audio.formats import FORMATS
from speechmesh.convert import ENCODING_BY_FORMAT
from speechmesh.v1 import common_pb2, stt_pb2, tts_pb2

router = APIRouter()
_BODY = json_body(TtsRequest)


def synthesize_request(body: TtsRequest) -> tts_pb2.SynthesizeRequest:
    return tts_pb2.SynthesizeRequest(
        text=body.text,
        model=body.model or "",
        voice=body.voice or "",
        language=body.language or "",
        speed=body.speed,
        output=common_pb2.AudioOutputSpec(encoding=ENCODING_BY_FORMAT[body.format]),
    )


async def _with_timestamps(ticket: Ticket, tts: TtsClient, stt: SttClient, body: TtsRequest) -> JSONResponse:
    audio, result = await tts.synthesize(synthesize_request(body))
    await spoke(ticket, result)
    # tiny.en is enough (and faster) for English; other languages need the multilingual model.
    config = stt_pb2.RecognitionConfig(
        model="faster-whisper" if result.language == "en" else "whisper",
        language=result.language,
        word_timestamps=True,
        vad_filter=False,
    )
    reply = await stt.recognize(config, audio)
    heard = [
        TimedWord(word.word, seconds(word.start_ms), seconds(word.end_ms))
        for segment in reply.segments
        for word in segment.words
    ]
    duration = seconds(result.audio.duration_ms)
    body_out = TtsTimestampsOut(
        audio_base64=base64.b64encode(audio).decode(),
        content_type=FORMATS[body.format].mime_type,
        duration=duration,
        model=result.model,
        voice=result.voice,
        language=result.language,
        words=[TimedWordOut(word=w.word, start=w.start, end=w.end) for w in align(body.text, heard, duration)],
        alignment="whisper-forced",
    )
    return JSONResponse(body_out.model_dump())


@both(
    router,
    "POST",
    "/v1/tts/",
    response_class=Response,
    responses={
        200: {
            "description": "The audio file, or with `timestamps` JSON with the audio and word times.",
            "model": TtsTimestampsOut,
            **binary("audio/mpeg", "audio/wav", "audio/flac", "audio/ogg"),
        },
        **errors(*BODY_ERRORS),
    },
    openapi_extra={**request_body(TtsRequest, "application/json"), **AUTHENTICATED},
)
async def text_to_speech(
    ticket: Ticket = Depends(admit),
    body: TtsRequest = Depends(_BODY),
    tts: TtsClient = Depends(tts_client),
    stt: SttClient = Depends(stt_client),
) -> Response:
    """Text to speech.

    Speaks `text` and answers the audio file in `format`. Without `model` the named voice's
    model speaks (else piper); without `language` it is detected from the text; without
    `voice` a voice of that language speaks. `stream` sends the audio as each sentence is
    synthesized (the pieces joined are one valid file); `timestamps` answers JSON instead:
    the audio in base64 and the start and end of every word. `X-Model`, `X-Voice` and
    `X-Language` name what spoke. Costs 1, 2 or 4 credits per started 1,000 characters by
    the model's tier (free, standard, premium)."""
    await ticket.meter(
        "characters", len(body.text), param="text", model=await priced_model(tts, body.model, body.voice)
    )
    media_type = FORMATS[body.format].mime_type
    if body.timestamps:
        if body.stream:
            raise ApiError(
                400, "bad_request", "'timestamps' needs the whole audio; it cannot be streamed.", param="stream"
            )
        return await _with_timestamps(ticket, tts, stt, body)
    if not body.stream:
        audio, result = await tts.synthesize(synthesize_request(body))
        await spoke(ticket, result)
        return Response(audio, media_type=media_type)
    plan, chunks = await tts.stream(synthesize_request(body))
    await spoke(ticket, plan)
    return ClosingStreamingResponse(chunks, media_type=media_type)
