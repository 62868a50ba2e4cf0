"""OpenAI-compatible POST /v1/audio/transcriptions and /v1/audio/translations.

Same multipart fields and response formats as OpenAI's API, so the official SDK
works when pointed at this gateway. `whisper-1` means this server's `whisper`;
any model id from /v1/models/ works too.
"""

from __future__ import annotations

import math
from typing import Any

import langcodes
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from gateway import subtitles
from gateway.admission import Ticket, admit
from gateway.clients import stt_client
from gateway.errors import ApiError
from gateway.openapi import AUTHENTICATED, BODY_ERRORS, errors, request_body
from gateway.routers import both
from gateway.schemas import OpenAITranscriptionForm, OpenAITranslationForm
from gateway.units import seconds
from gateway.uploads import MultipartForm, meter_audio, read_multipart, recognize_within
from speechmesh.clients.stt import SttClient
from speechmesh.common import limits
from speechmesh.v1 import stt_pb2

router = APIRouter()

# OpenAI's limit is 25 MB; this server accepts what /v1/stt/ accepts.
_FILE_LIMIT = {"file": limits.STT_UPLOAD_MAX_BYTES}
_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "json and verbose_json: JSON; text, srt and vtt: plain text.",
        "content": {"application/json": {"schema": {"type": "object"}}, "text/plain": {"schema": {"type": "string"}}},
    },
    **errors(*BODY_ERRORS),
}


def _language_name(code: str) -> str:
    """OpenAI's verbose_json names the language ("english"), where /v1/stt/ gives the code."""
    try:
        return langcodes.Language.get(code).language_name().lower()
    except (ValueError, LookupError):
        return code


def _verbose(reply: stt_pb2.RecognizeResponse, task: str, granularities: set[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": task,
        "language": _language_name(reply.language),
        "duration": seconds(reply.duration_ms),
        "text": reply.text,
    }
    if "segment" in granularities or not granularities:
        body["segments"] = [
            {
                "id": index,
                "seek": segment.start_ms // 10,
                "start": seconds(segment.start_ms),
                "end": seconds(segment.end_ms),
                "text": segment.text,
                "tokens": list(segment.tokens),
                "temperature": round(segment.temperature, 3),
                "avg_logprob": round(segment.avg_logprob, 5),
                "compression_ratio": round(segment.compression_ratio, 5),
                "no_speech_prob": round(segment.no_speech_prob, 5),
            }
            for index, segment in enumerate(reply.segments)
        ]
    if "word" in granularities:
        body["words"] = [
            {"word": word.word, "start": seconds(word.start_ms), "end": seconds(word.end_ms)}
            for segment in reply.segments
            for word in segment.words
        ]
    return body


def _render(reply: stt_pb2.RecognizeResponse, response_format: str, task: str, granularities: set[str]) -> Response:
    usage = {"type": "duration", "seconds": math.ceil(reply.duration_ms / 1000)}
    if response_format == "json":
        return JSONResponse({"text": reply.text, "usage": usage})
    if response_format == "verbose_json":
        return JSONResponse({**_verbose(reply, task, granularities), "usage": usage})
    render = {"text": subtitles.text, "srt": subtitles.srt, "vtt": subtitles.vtt}[response_format]
    return PlainTextResponse(render(reply))


async def _transcribe(ticket: Ticket, stt: SttClient, form: MultipartForm, task: str) -> Response:
    upload = form.file("file")
    response_format = form.string("response_format", "json")
    if response_format not in _FORMATS:
        raise ApiError(
            400,
            "bad_request",
            f"'response_format' must be one of {', '.join(_FORMATS)}, not '{response_format}'.",
            param="response_format",
        )
    granularities = set(form.values("timestamp_granularities[]") + form.values("timestamp_granularities"))
    unknown = granularities - {"word", "segment"}
    if unknown:
        raise ApiError(
            400,
            "bad_request",
            f"'timestamp_granularities[]' takes word and segment, not {', '.join(sorted(unknown))}.",
            param="timestamp_granularities[]",
        )
    config = stt_pb2.RecognitionConfig(
        model=form.string("model"),
        # Translation reads the spoken language itself; OpenAI takes no language there.
        language=form.string("language") if task == "transcribe" else "",
        word_timestamps="word" in granularities and response_format == "verbose_json",
        task=stt_pb2.TRANSLATE if task == "translate" else stt_pb2.TRANSCRIBE,
        prompt=form.string("prompt", max_chars=limits.PROMPT_MAX_CHARS),
        temperature=form.number("temperature", 0.0, limits.TEMPERATURE_MIN, limits.TEMPERATURE_MAX),
    )
    budget = await meter_audio(ticket, upload)
    reply = await recognize_within(stt, config, upload.chunks(), budget)
    ticket.describe({"X-Model": reply.model})
    await ticket.served(amount=reply.duration_ms / 1000)
    return _render(reply, response_format, task, granularities)


@both(
    router,
    "POST",
    "/v1/audio/transcriptions",
    responses=_RESPONSES,
    openapi_extra={**request_body(OpenAITranscriptionForm, "multipart/form-data"), **AUTHENTICATED},
)
async def transcriptions(
    request: Request, ticket: Ticket = Depends(admit), stt: SttClient = Depends(stt_client)
) -> Response:
    """OpenAI-compatible transcription.

    OpenAI's `/v1/audio/transcriptions`, for the official SDKs: `whisper-1` means Whisper
    base here, and any speechmesh STT model id works. Priced as `/v1/stt/`."""
    with await read_multipart(request, _FILE_LIMIT) as form:
        return await _transcribe(ticket, stt, form, "transcribe")


@both(
    router,
    "POST",
    "/v1/audio/translations",
    responses=_RESPONSES,
    openapi_extra={**request_body(OpenAITranslationForm, "multipart/form-data"), **AUTHENTICATED},
)
async def translations(
    request: Request, ticket: Ticket = Depends(admit), stt: SttClient = Depends(stt_client)
) -> Response:
    """OpenAI-compatible translation to English.

    OpenAI's `/v1/audio/translations`: speech in any language, its text in English
    (Whisper's translate task; the English-only model refuses it). Priced as `/v1/stt/`."""
    with await read_multipart(request, _FILE_LIMIT) as form:
        return await _transcribe(ticket, stt, form, "translate")
