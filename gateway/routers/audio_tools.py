"""The audio tools: POST /v1/audio/enhance/, dereverb/, separate/, analyze/, convert/.

Each reads its multipart upload (413 while uploading past the limit), checks every field
against the page's values (400 naming them), holds the credits by the file's length
(enhance, dereverb 2 a minute; separate 3 a minute for 2 stems, 4 for more; analyze and
convert are free), has the audio service do the work within what the credits pay for, and
answers the file. Separation answers a ZIP of one file per stem (`<stem>.<format>`), and
with a webhook_url becomes a task whose result is that ZIP.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from gateway.admission import Ticket, admit
from gateway.clients import audio_client
from gateway.errors import ApiError
from gateway.openapi import AUTHENTICATED, BODY_ERRORS, binary, errors, request_body
from gateway.processed import Received, file_response, receive, receive_stems
from gateway.routers import both
from gateway.schemas import (
    AnalyzeForm,
    AnalyzeResponse,
    ConvertForm,
    DereverbForm,
    EnhanceForm,
    SeparateForm,
    TaskOut,
)
from gateway.tasks.submit import checked_webhook_url, submit
from gateway.tasks.webhooks import URL_MAX_CHARS
from gateway.uploads import AudioBudget, MultipartForm, UploadedFile, meter_audio, read_multipart
from speechmesh.clients.audio import AudioClient
from speechmesh.common import limits
from speechmesh.convert import ENCODING_BY_FORMAT
from speechmesh.v1 import audio_pb2, common_pb2

router = APIRouter()

TOOL_FORMATS = ("mp3", "wav", "flac", "ogg", "m4a", "aac")
STEM_FORMATS = ("wav", "mp3", "flac")
_AUDIO_OUT = binary("audio/mpeg", "audio/wav", "audio/flac", "audio/ogg", "audio/mp4", "audio/aac")
_FREE_BUDGET = AudioBudget(0.0, 0, 0)
# Analyze and convert are free: never 402.
_FREE_ERRORS = tuple(code for code in BODY_ERRORS if code != 402)


def choice(form: MultipartForm, name: str, allowed: Sequence[str], default: str | None = None) -> str | None:
    """The field's value when it is one of `allowed`; `default` when absent; else 400."""
    value = form.value(name)
    if value is None or not value.strip():
        return default
    value = value.strip().lower()
    if value not in allowed:
        raise ApiError(400, "bad_request", f"'{name}' must be one of {', '.join(allowed)}.", param=name)
    return value


def whole(form: MultipartForm, name: str, allowed: Sequence[int], default: int | None = None) -> int | None:
    """The field as one of the whole numbers `allowed`; `default` when absent; else 400."""
    value = choice(form, name, [str(number) for number in allowed])
    return default if value is None else int(value)


def output(fmt: str | None, **spec: int) -> common_pb2.AudioOutputSpec:
    """The asked format (None: the method's default) and output fields as the service takes them."""
    encoding = ENCODING_BY_FORMAT[fmt] if fmt else common_pb2.AUDIO_ENCODING_UNSPECIFIED
    return common_pb2.AudioOutputSpec(encoding=encoding, **spec)


async def processed(ticket: Ticket, upload: UploadedFile, config: Any, call: Callable[..., Any]) -> Received:
    """`call(config, chunks)`'s result, the credits held on the upload's length and the
    service bounded to what they pay for (`config.max_seconds`)."""
    budget = await meter_audio(ticket, upload)
    config.max_seconds = budget.seconds
    return await receive(call(config, upload.chunks()), budget)


async def answered(ticket: Ticket, received: Received, filename: str, headers: dict[str, str] | None = None) -> Any:
    """The processed file as the response (`filename` without an extension: the format's),
    the request charged for the decoded input."""
    model = {"X-Model": received.report.model} if received.report.model else {}
    ticket.describe({**model, **(headers or {})})
    await ticket.served(amount=received.report.input_duration_ms / 1000)
    name = filename if "." in filename else f"{filename}.{received.extension}"
    return file_response(received, received.media_type, name, {})


@both(
    router,
    "POST",
    "/v1/audio/enhance/",
    response_class=Response,
    responses={
        200: {"description": "The enhanced audio, in the input's format.", **_AUDIO_OUT},
        **errors(*BODY_ERRORS),
    },
    openapi_extra={**request_body(EnhanceForm, "multipart/form-data"), **AUTHENTICATED},
)
async def enhance(request: Request, ticket: Ticket = Depends(admit), audio: AudioClient = Depends(audio_client)) -> Any:
    """Enhance speech: denoise and clarity.

    Denoises (DeepFilterNet3 or RNNoise, `strength` the attenuation limit) and improves
    clarity (rumble and hum removed, presence lift, loudness to -16 LUFS, peaks at -1 dBTP);
    the output keeps the input's length, timing and sample rate. 2 credits per started
    minute of audio."""
    with await read_multipart(request, {"file": limits.AUDIO_UPLOAD_MAX_BYTES}) as form:
        upload = form.file("file")
        config = audio_pb2.EnhanceConfig(
            denoise=form.boolean("denoise", True),
            enhance_clarity=form.boolean("enhance_clarity", True),
            super_resolution=form.boolean("super_resolution", False),
            strength=form.integer("strength", 2, 1, 3),
            model=form.string("model"),
            output=output(choice(form, "format", TOOL_FORMATS)),
        )
        received = await processed(ticket, upload, config, audio.enhance)
    return await answered(ticket, received, "enhanced")


@both(
    router,
    "POST",
    "/v1/audio/dereverb/",
    response_class=Response,
    responses={200: {"description": "The audio without its reverberation.", **_AUDIO_OUT}, **errors(*BODY_ERRORS)},
    openapi_extra={**request_body(DereverbForm, "multipart/form-data"), **AUTHENTICATED},
)
async def dereverb(
    request: Request, ticket: Ticket = Depends(admit), audio: AudioClient = Depends(audio_client)
) -> Any:
    """Remove echo and reverberation.

    `reverb` shortens late reverberation (WPE, then a suppressor from intensity 3); `echo`
    finds discrete delayed copies 50-800 ms after the sound and undoes them. 2 credits per
    started minute of audio."""
    kinds = {"echo": audio_pb2.ECHO, "reverb": audio_pb2.REVERB, "both": audio_pb2.DEREVERB_TYPE_UNSPECIFIED}
    with await read_multipart(request, {"file": limits.AUDIO_UPLOAD_MAX_BYTES}) as form:
        upload = form.file("file")
        config = audio_pb2.DereverbConfig(
            type=kinds[choice(form, "type", tuple(kinds), "both") or "both"],
            intensity=form.integer("intensity", 3, 1, 5),
            output=output(choice(form, "format", TOOL_FORMATS)),
        )
        received = await processed(ticket, upload, config, audio.dereverb)
    return await answered(ticket, received, "dereverbed")


@both(
    router,
    "POST",
    "/v1/audio/separate/",
    response_class=Response,
    responses={
        200: {"description": "A ZIP with one file per stem: <stem>.<format>.", **binary("application/zip")},
        202: {"model": TaskOut, "description": "With webhook_url: the task, at once."},
        **errors(*BODY_ERRORS),
    },
    openapi_extra={**request_body(SeparateForm, "multipart/form-data"), **AUTHENTICATED},
)
async def separate(
    request: Request, ticket: Ticket = Depends(admit), audio: AudioClient = Depends(audio_client)
) -> Any:
    """Split music into stems.

    Answers a ZIP of one file per stem, `<stem>.<format>`: 2 stems are vocals and
    accompaniment; 4 vocals, drums, bass, other; 5 adds piano, 6 guitar (demucs only). The
    stems add up to the input. With `webhook_url` it is a task (202 at once; the ZIP is its
    result). 3 credits per started minute for 2 stems, 4 for more."""
    with await read_multipart(request, {"file": limits.AUDIO_UPLOAD_MAX_BYTES}) as form:
        upload = form.file("file")
        stems = whole(form, "stems", (2, 4, 5, 6), 2) or 2
        params: dict[str, Any] = {
            "model": form.string("model"),
            "stems": stems,
            "format": choice(form, "format", STEM_FORMATS, "wav") or "wav",
        }
        webhook_url = await checked_webhook_url(request, form.string("webhook_url", max_chars=URL_MAX_CHARS))
        budget = await meter_audio(ticket, upload, grade=str(stems))
        params["budget"] = budget.__dict__
        if webhook_url:
            return await submit(request, ticket, "separate", params, webhook_url, upload)
        received = await separate_within(audio, params, upload.chunks())
    return await answered(ticket, received, "stems.zip")


def separate_config(params: dict[str, Any]) -> audio_pb2.SeparateConfig:
    """The request's fields (as a task keeps them) as the audio service's config."""
    return audio_pb2.SeparateConfig(
        model=params["model"],
        stems=params["stems"],
        output=output(params["format"]),
        max_seconds=params["budget"]["seconds"],
    )


async def separate_within(audio: AudioClient, params: dict[str, Any], source: Any) -> Received:
    received = await receive_stems(
        audio.separate(separate_config(params), source), AudioBudget(**params["budget"]), params["format"]
    )
    received.metadata.mime_type = "application/zip"
    return received


@both(
    router,
    "POST",
    "/v1/audio/analyze/",
    response_model=AnalyzeResponse,
    responses=errors(*_FREE_ERRORS),
    openapi_extra={**request_body(AnalyzeForm, "multipart/form-data"), **AUTHENTICATED},
)
async def analyze(
    request: Request, ticket: Ticket = Depends(admit), audio: AudioClient = Depends(audio_client)
) -> JSONResponse:
    """Find a song's key, tempo and meter.

    Analyses the middle 3 minutes of the first 10: key and scale, BPM, time signature,
    Camelot code and compatible keys. Audio with no measurable key or steady beat (speech,
    silence, under 6 s) is a 400, never a made-up key. Free."""
    with await read_multipart(request, {"file": limits.AUDIO_UPLOAD_MAX_BYTES}) as form:
        upload = form.file("file")
        reply = await audio.analyze(audio_pb2.AnalyzeConfig(), upload.chunks())
    body = AnalyzeResponse(
        key=reply.key,
        scale=reply.scale,
        bpm=round(reply.bpm, 1),
        time_signature=reply.time_signature,
        camelot=reply.camelot,
        compatible_keys=list(reply.compatible_keys),
    )
    return JSONResponse(body.model_dump())


@both(
    router,
    "POST",
    "/v1/audio/convert/",
    response_class=Response,
    responses={200: {"description": "The converted file.", **_AUDIO_OUT}, **errors(*_FREE_ERRORS)},
    openapi_extra={**request_body(ConvertForm, "multipart/form-data"), **AUTHENTICATED},
)
async def convert(request: Request, ticket: Ticket = Depends(admit), audio: AudioClient = Depends(audio_client)) -> Any:
    """Convert audio between formats.

    Re-encodes to `format` at `bitrate`, `sample_rate` and `channels` (each the input's when
    omitted); lossless stays lossless, and title, artist, album and similar tags are kept
    where the target holds tags. Free."""
    with await read_multipart(request, {"file": limits.AUDIO_UPLOAD_MAX_BYTES}) as form:
        upload = form.file("file")
        fmt = choice(form, "format", TOOL_FORMATS)
        if fmt is None:
            raise ApiError(
                400, "bad_request", f"'format' is required: one of {', '.join(TOOL_FORMATS)}.", param="format"
            )
        channels = choice(form, "channels", ("mono", "stereo"))
        config = audio_pb2.ConvertConfig(
            output=output(
                fmt,
                bitrate_kbps=whole(form, "bitrate", (64, 128, 192, 256, 320), 0) or 0,
                sample_rate_hertz=whole(form, "sample_rate", (22050, 44100, 48000), 0) or 0,
                channels={None: 0, "mono": 1, "stereo": 2}[channels],
            )
        )
        received = await receive(audio.convert(config, upload.chunks()), _FREE_BUDGET)
    return await answered(ticket, received, "converted")
