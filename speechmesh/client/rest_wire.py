"""The REST API on the wire, for the sync and the async REST client alike: the paths, the
request bodies each method sends, and the typed results, usage and errors read back.

Kept apart from the clients so that `RestClient` and `AsyncRestClient` differ only in how
they wait for I/O.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import httpx

from speechmesh.client.errors import ApiError, from_body, integer
from speechmesh.client.results import Analysis, Model, Segment, Transcript, Usage, Voice, Word

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

TTS = "/v1/tts/"
STT = "/v1/stt/"
MODELS = "/v1/models/"
VOICES = "/v1/voices/"
ANALYZE = "/v1/audio/analyze/"
CONVERT = "/v1/audio/convert/"

# Audio to upload: the bytes, or the path of a file (streamed from disk, not read whole).
Audio = bytes | str | os.PathLike[str]
D = TypeVar("D", bound="DataclassInstance")


def root(base_url: str) -> str:
    """The server's root: the seed page's base URL (`https://host/v1/`) works as well as `https://host`."""
    return base_url.rstrip("/").removesuffix("/v1")


def headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def _present(**values: object) -> dict[str, Any]:
    """The values given (None: left to the server's default)."""
    return {name: value for name, value in values.items() if value is not None}


def _form(**values: object) -> dict[str, str]:
    """Multipart fields as the gateway reads them (booleans as true/false)."""
    return {
        name: ("true" if value else "false") if isinstance(value, bool) else str(value)
        for name, value in _present(**values).items()
    }


def tts_body(
    text: str,
    model: str | None,
    voice: str | None,
    format: str,
    speed: float | None,
    language: str | None,
    stream: bool,
) -> dict[str, Any]:
    return _present(text=text, model=model, voice=voice, format=format, speed=speed, language=language, stream=stream)


def stt_form(model: str | None, language: str | None, timestamps: bool, diarize: bool) -> dict[str, str]:
    return _form(model=model, language=language, timestamps=timestamps, diarize=diarize)


def convert_form(format: str, bitrate: int | None, sample_rate: int | None, channels: str | None) -> dict[str, str]:
    return _form(format=format, bitrate=bitrate, sample_rate=sample_rate, channels=channels)


def voices_query(model: str | None, language: str | None, gender: str | None) -> dict[str, str]:
    return _form(model=model, language=language, gender=gender)


@contextlib.contextmanager
def upload(audio: Audio) -> Iterator[dict[str, tuple[str, bytes | BinaryIO]]]:
    """The `files` of a multipart request sending `audio` as its `file` field."""
    if isinstance(audio, bytes):
        yield {"file": ("audio", audio)}
        return
    path = Path(audio)
    with path.open("rb") as file:
        yield {"file": (path.name, file)}


def _build(cls: type[D], body: Mapping[str, Any]) -> D:
    """`cls` from a JSON object, ignoring fields a newer gateway may add."""
    known = {field.name for field in fields(cls)}
    return cls(**{name: value for name, value in body.items() if name in known})


def transcript(body: dict[str, Any]) -> Transcript:
    words = body.get("words")
    return Transcript(
        text=body["text"],
        language=body["language"],
        duration=body["duration"],
        segments=[_build(Segment, segment) for segment in body["segments"]],
        words=None if words is None else [_build(Word, word) for word in words],
    )


def models(body: dict[str, Any]) -> list[Model]:
    return [_build(Model, model) for model in body["models"]]


def voices(body: dict[str, Any]) -> list[Voice]:
    return [_build(Voice, voice) for voice in body["voices"]]


def analysis(body: dict[str, Any]) -> Analysis:
    return _build(Analysis, body)


def usage(response: httpx.Response) -> Usage:
    get = response.headers.get
    return Usage(
        rate_limit_limit=integer(get("X-RateLimit-Limit")),
        rate_limit_remaining=integer(get("X-RateLimit-Remaining")),
        rate_limit_reset=integer(get("X-RateLimit-Reset")),
        credits_used=integer(get("X-Credits-Used")),
        credits_remaining=integer(get("X-Credits-Remaining")),
    )


def error(response: httpx.Response) -> ApiError:
    """The typed error of a response with an error status, its body read."""
    try:
        body = response.json()
    except ValueError:  # not the error JSON (a proxy's page): the status says what it can
        body = None
    return from_body(response.status_code, body, integer(response.headers.get("Retry-After")))
