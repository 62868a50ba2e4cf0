"""POST /v1/stt/: transcribe an uploaded audio file, with word times and speakers on request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from gateway.admission import Ticket, admit
from gateway.clients import stt_client
from gateway.openapi import AUTHENTICATED, BODY_ERRORS, errors, request_body
from gateway.routers import both
from gateway.schemas import SttForm, SttResponse, SttSegmentOut, SttWordOut, TaskOut
from gateway.tasks.submit import checked_webhook_url, submit
from gateway.tasks.webhooks import URL_MAX_CHARS
from gateway.units import seconds
from gateway.uploads import meter_audio, read_multipart, recognize_within
from speechmesh.clients.stt import SttClient
from speechmesh.common import limits
from speechmesh.v1 import stt_pb2

router = APIRouter()


def stt_response(reply: stt_pb2.RecognizeResponse, timestamps: bool, diarize: bool) -> SttResponse:
    words = [word for segment in reply.segments for word in segment.words]
    return SttResponse(
        text=reply.text,
        language=reply.language,
        duration=seconds(reply.duration_ms),
        segments=[
            SttSegmentOut(
                start=seconds(segment.start_ms),
                end=seconds(segment.end_ms),
                text=segment.text,
                speaker=segment.speaker if diarize else None,
                language=segment.language or reply.language,
            )
            for segment in reply.segments
        ],
        words=[
            SttWordOut(
                word=word.word,
                start=seconds(word.start_ms),
                end=seconds(word.end_ms),
                probability=round(word.probability, 4),
                speaker=word.speaker if diarize else None,
            )
            for word in words
        ]
        if timestamps
        else None,
    )


def recognition_config(params: Mapping[str, Any]) -> stt_pb2.RecognitionConfig:
    """The request's form fields (as a task keeps them) as the STT service's config."""
    return stt_pb2.RecognitionConfig(
        model=params["model"],
        language=params["language"],
        word_timestamps=params["timestamps"],
        diarize=params["diarize"],
        vad_filter=params["vad_filter"],
        min_speakers=params["min_speakers"],
        max_speakers=params["max_speakers"],
    )


@both(
    router,
    "POST",
    "/v1/stt/",
    response_model=SttResponse,
    responses={202: {"model": TaskOut, "description": "With webhook_url: the task, at once."}, **errors(*BODY_ERRORS)},
    openapi_extra={**request_body(SttForm, "multipart/form-data"), **AUTHENTICATED},
)
async def speech_to_text(
    request: Request, ticket: Ticket = Depends(admit), stt: SttClient = Depends(stt_client)
) -> JSONResponse:
    """Speech to text.

    Transcribes the uploaded audio (any container FFmpeg reads) in any of Whisper's 99
    languages, detected unless `language` names it: the text, its timed segments, with
    `timestamps` every word's times, with `diarize` each segment's speaker. With
    `webhook_url` it is a task (202 at once; the transcript is its result). 2 credits per
    started minute of audio."""
    with await read_multipart(request, {"file": limits.STT_UPLOAD_MAX_BYTES}) as form:
        upload = form.file("file")
        timestamps = form.boolean("timestamps", False)
        diarize = form.boolean("diarize", False)
        params = {
            "model": form.string("model"),
            "language": form.string("language", "auto"),
            "timestamps": timestamps,
            "diarize": diarize,
            "vad_filter": form.boolean("vad_filter", True),
            "min_speakers": form.integer("min_speakers", 0, 0, limits.SPEAKERS_MAX),
            "max_speakers": form.integer("max_speakers", 0, 0, limits.SPEAKERS_MAX),
        }
        webhook_url = await checked_webhook_url(request, form.string("webhook_url", max_chars=URL_MAX_CHARS))
        budget = await meter_audio(ticket, upload)
        if webhook_url:
            params["budget"] = asdict(budget)
            return await submit(request, ticket, "stt", params, webhook_url, upload)
        reply = await recognize_within(stt, recognition_config(params), upload.chunks(), budget)
    ticket.describe({"X-Model": reply.model})
    await ticket.served(amount=reply.duration_ms / 1000)
    body = stt_response(reply, timestamps, diarize)
    # "speaker" stays (null) without diarization: the documented shape always has the key.
    return JSONResponse(body.model_dump(exclude={"words"} if body.words is None else None))
