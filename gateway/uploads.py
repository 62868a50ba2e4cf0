"""Streaming multipart/form-data reader that enforces per-file size limits as bytes arrive.

Audio uploads can be large: each file part goes to a spooled temporary file (memory
up to SPOOL_MEMORY_BYTES, then disk) and is refused with 413 `file_too_large` the
moment it passes its limit, so an oversized upload is never held whole. A declared
Content-Length far above every limit is refused before a byte of the body is read.
The form fields (model, language, ...) can come before or after the file, as clients
send them in any order.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import grpc
from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from gateway.admission import Ticket
from gateway.errors import ApiError, rpc_failure
from gateway.pricing import AUDIO_SECONDS
from speechmesh.clients.stt import SttClient
from speechmesh.clients.uploads import AudioSource
from speechmesh.common import limits
from speechmesh.common.audio.probe import packet_seconds
from speechmesh.v1 import stt_pb2

if TYPE_CHECKING:  # python-multipart defines its callback table for type checkers only
    from python_multipart.multipart import MultipartCallbacks

SPOOL_MEMORY_BYTES = 4 * 1024 * 1024
FIELD_MAX_BYTES = 64 * 1024
FIELDS_MAX = 64
_HEADER_MAX_BYTES = 8 * 1024
_PART_HEADERS_MAX = 16
# Multipart framing around the file: boundaries, part headers, the small fields.
_ENVELOPE_BYTES = FIELDS_MAX * FIELD_MAX_BYTES

# Held for an upload whose packets do not tell its length.
_UNKNOWN_LENGTH_SECONDS = 60.0
N = TypeVar("N", int, float)
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass
class UploadedFile:
    name: str
    filename: str
    content_type: str
    size: int = 0
    spool: tempfile.SpooledTemporaryFile = field(
        # Closed by MultipartForm.close(), which every reader of a form calls.
        default_factory=lambda: tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    )

    def chunks(self, size: int = limits.CHUNK_BYTES) -> Iterator[bytes]:
        self.spool.seek(0)
        while block := self.spool.read(size):
            yield block


@dataclass
class MultipartForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)

    def value(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None

    def string(self, name: str, default: str = "", max_chars: int = limits.ID_MAX_CHARS) -> str:
        """A text field (model and voice ids and language codes by default: short), 400 when longer."""
        value = self.value(name) or default
        if len(value) > max_chars:
            raise ApiError(400, "bad_request", f"'{name}' is longer than {max_chars} characters.", param=name)
        return value

    def values(self, name: str) -> list[str]:
        return self.fields.get(name, [])

    def boolean(self, name: str, default: bool) -> bool:
        value = self.value(name)
        if value is None or not value.strip():
            return default
        if value.strip().lower() in _TRUE:
            return True
        if value.strip().lower() in _FALSE:
            return False
        raise ApiError(400, "bad_request", f"'{name}' must be true or false, not '{value[:40]}'.", param=name)

    def number(self, name: str, default: float, minimum: float, maximum: float) -> float:
        return self._parsed(name, default, float, "a number", minimum, maximum)

    def integer(self, name: str, default: int, minimum: int, maximum: int) -> int:
        return self._parsed(name, default, int, "a whole number", minimum, maximum)

    def _parsed(self, name: str, default: N, parse: Callable[[str], N], kind: str, minimum: N, maximum: N) -> N:
        value = self.value(name)
        if value is None or not value.strip():
            return default
        try:
            number = parse(value.strip())
        except ValueError:
            raise ApiError(400, "bad_request", f"'{name}' must be {kind}, not '{value[:40]}'.", param=name) from None
        # `not (a <= x <= b)` also refuses NaN, which compares false with everything.
        if not minimum <= number <= maximum:
            raise ApiError(400, "bad_request", f"'{name}' must be {kind} from {minimum} to {maximum}.", param=name)
        return number

    def file(self, name: str) -> UploadedFile:
        """The uploaded file `name`, or 400 when it is missing or empty."""
        upload = self.files.get(name)
        if upload is None:
            if name in self.fields:
                raise ApiError(400, "bad_request", f"'{name}' must be a file upload, not a text field.", param=name)
            raise ApiError(400, "bad_request", f"'{name}' is required: upload the audio as a file.", param=name)
        if upload.size == 0:
            raise ApiError(400, "bad_request", f"The uploaded '{name}' is empty.", param=name)
        return upload

    def close(self) -> None:
        for upload in self.files.values():
            upload.spool.close()

    def __enter__(self) -> MultipartForm:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class _Collector:
    """Parser callbacks: routes part bytes to a field buffer or a size-checked file."""

    def __init__(self, file_limits: dict[str, int]) -> None:
        self.form = MultipartForm()
        self._limits = file_limits
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._field: tuple[str, bytearray] | None = None
        self._file: UploadedFile | None = None

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._append_header("_header_field", data[start:end]),
            "on_header_value": lambda data, start, end: self._append_header("_header_value", data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": lambda data, start, end: self._data(data[start:end]),
            "on_part_end": self._part_end,
        }

    def _append_header(self, attribute: str, data: bytes) -> None:
        value = getattr(self, attribute) + data
        if len(value) > _HEADER_MAX_BYTES:
            raise ApiError(400, "bad_request", "A part header of the multipart/form-data body is too long.")
        setattr(self, attribute, value)

    def _part_begin(self) -> None:
        self._headers, self._field, self._file = {}, None, None

    def _header_end(self) -> None:
        if len(self._headers) >= _PART_HEADERS_MAX:
            raise ApiError(400, "bad_request", "A part of the multipart/form-data body has too many headers.")
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            if name not in self._limits:
                return  # a file nobody asked for is read past, not stored
            content_type = self._headers.get(b"content-type", b"application/octet-stream")
            self._file = UploadedFile(name, options[b"filename"].decode("utf-8", "replace"), content_type.decode())
            self.form.files[name] = self._file
        else:
            if sum(len(values) for values in self.form.fields.values()) >= FIELDS_MAX:
                raise ApiError(400, "bad_request", f"The form has more than {FIELDS_MAX} fields.")
            self._field = (name, bytearray())

    def _data(self, data: bytes) -> None:
        if self._file is not None:
            self._file.size += len(data)
            limit = self._limits[self._file.name]
            if self._file.size > limit:
                raise _TooLarge(self._file.name, limit)
            self._file.spool.write(data)
        elif self._field is not None:
            self._field[1].extend(data)
            if len(self._field[1]) > FIELD_MAX_BYTES:
                raise ApiError(400, "bad_request", f"Field '{self._field[0]}' is longer than 64 KiB.")

    def _part_end(self) -> None:
        if self._field is not None:
            name, value = self._field
            self.form.fields.setdefault(name, []).append(value.decode("utf-8", "replace"))
        self._field, self._file = None, None


class _TooLarge(Exception):
    def __init__(self, name: str, limit: int) -> None:
        self.error = ApiError(
            413,
            "file_too_large",
            f"'{name}' is larger than the {limit // (1024 * 1024)} MB this endpoint accepts.",
            param=name,
            max_bytes=limit,
        )


async def read_multipart(request: Request, file_limits: dict[str, int]) -> MultipartForm:
    """Parses the body of `request`; `file_limits` maps each accepted file field to its byte limit."""
    content_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        name = next(iter(file_limits))
        raise ApiError(
            400, "bad_request", f"'{name}' is required: send it as a file in a multipart/form-data body.", param=name
        )
    declared = request.headers.get("content-length")
    ceiling = max(file_limits.values()) + _ENVELOPE_BYTES
    if declared and declared.isdigit() and int(declared) > ceiling:
        raise _TooLarge(next(iter(file_limits)), max(file_limits.values())).error
    collector = _Collector(file_limits)
    parser = MultipartParser(boundary, collector.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            # Parts nobody asked for are read past, not stored, but they count too.
            received += len(chunk)
            if received > ceiling:
                raise _TooLarge(next(iter(file_limits)), max(file_limits.values()))
            parser.write(chunk)
        parser.finalize()
    except _TooLarge as too_large:
        # The rest of the body is not read: the reply closes the connection (connection.py).
        collector.form.close()
        raise too_large.error from None
    except MultipartParseError:
        collector.form.close()
        raise ApiError(400, "bad_request", "The multipart/form-data body is malformed or cut short.") from None
    except BaseException:
        collector.form.close()
        raise
    return collector.form


@dataclass(frozen=True)
class AudioBudget:
    """The most audio a request's credits pay for: what the STT service is told to stop at
    (`RecognitionConfig.max_seconds`; 0: no bound), and the 402 its refusal becomes."""

    seconds: float
    credits: int
    next_credits: int  # what a longer file needs at least

    def refusal(self, error: grpc.aio.AioRpcError) -> ApiError | None:
        """The 402 for the service's refusal of audio past this budget; None for any other error."""
        failure = rpc_failure(error)
        if not self.seconds or failure.code != "file_too_large":
            return None
        if failure.fields.get("max_seconds") != f"{self.seconds:g}":
            return None  # the service's own limit, not the credits
        return ApiError(
            402,
            "insufficient_credits",
            "You do not have enough credits for this request.",
            credits_required=self.next_credits,
            credits_available=self.credits,
        )


async def meter_audio(ticket: Ticket, upload: UploadedFile, grade: str | None = None) -> AudioBudget:
    """Holds the credits for processing `upload` (at `grade`, where the price has grades),
    by its length as its packets tell it (a minute when they cannot: the service then
    decides whether it is audio at all), and bounds the work to what the key's credits pay
    for: packets can under-state a file's length, and the decoded length is what is charged
    (`Ticket.served`)."""
    seconds = await asyncio.to_thread(packet_seconds, upload.spool)
    await ticket.meter(AUDIO_SECONDS, seconds or _UNKNOWN_LENGTH_SECONDS, grade=grade)
    bill = ticket.bill
    if bill is None or bill.hold is None:
        return AudioBudget(0.0, 0, 0)
    credits = bill.hold.amount + bill.hold.balance
    most = bill.price.most(credits, bill.tier)
    return AudioBudget(most, credits, bill.price.of(most + 1, bill.tier))


async def recognize_within(
    stt: SttClient, config: stt_pb2.RecognitionConfig, audio: AudioSource, budget: AudioBudget
) -> stt_pb2.RecognizeResponse:
    """The transcription of `audio`, stopped by the service at what `budget` pays for (402)."""
    config.max_seconds = budget.seconds
    try:
        return await stt.recognize(config, audio)
    except grpc.aio.AioRpcError as error:
        refusal = budget.refusal(error)
        if refusal is None:
            raise
        raise refusal from None
