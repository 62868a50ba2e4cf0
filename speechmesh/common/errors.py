"""Typed errors raised by engines and services.

Each class stands for one failure a caller can act on. The gRPC runtime maps them to
status codes in one table (`speechmesh.runtime.status`), and the gateway maps status
codes to the documented HTTP error JSON in one table (`gateway.errors`). Keyword
arguments become extra fields of that JSON (e.g. `param="speed"`).
"""

from __future__ import annotations


class SpeechmeshError(Exception):
    """Base class: a message for people plus machine-readable fields."""

    reason = "ERROR"

    def __init__(self, message: str, **fields: str) -> None:
        super().__init__(message)
        self.message = message
        self.fields = {key: str(value) for key, value in fields.items()}


class InvalidArgument(SpeechmeshError):
    """A request value is missing, malformed or out of range."""

    reason = "INVALID_ARGUMENT"


class InvalidAudio(InvalidArgument):
    """Input bytes are empty, not audio, or truncated beyond decoding."""

    reason = "INVALID_AUDIO"


class NotFound(SpeechmeshError):
    """The named model or voice does not exist."""

    reason = "NOT_FOUND"


class ModelUnavailable(SpeechmeshError):
    """The model is known but cannot be served here (weights or package missing).

    The message reaches clients, so it names no server paths; `detail` (where the weights
    were looked for, what the OS said) is for the service's log only."""

    reason = "MODEL_UNAVAILABLE"

    def __init__(self, message: str, *, detail: str = "", **fields: str) -> None:
        super().__init__(message, **fields)
        self.detail = detail


class ModelLoading(SpeechmeshError):
    """The model exists and is still loading; retrying in a few seconds will work."""

    reason = "MODEL_LOADING"


class UpstreamUnavailable(SpeechmeshError):
    """A service this one calls cannot answer now; retrying later may work."""

    reason = "UPSTREAM_UNAVAILABLE"


class Overloaded(SpeechmeshError):
    """The model has as much work running and queued as it may take; retry after
    `retry_after_seconds` (derived from the queue ahead)."""

    reason = "OVERLOADED"

    def __init__(self, model: str, retry_after_seconds: int) -> None:
        super().__init__(
            f"Model '{model}' is at capacity; retry in {retry_after_seconds} s.",
            model=model,
            retry_after_seconds=str(retry_after_seconds),
        )
        self.retry_after_seconds = retry_after_seconds


class PayloadTooLarge(SpeechmeshError):
    """Input exceeds the method's size limit."""

    reason = "FILE_TOO_LARGE"


class AudioTooLong(PayloadTooLarge):
    """Decoded audio lasts longer than the method accepts."""

    def __init__(self, max_seconds: float, **fields: str) -> None:
        super().__init__(
            f"The audio lasts longer than {_duration(max_seconds)}, the most this method accepts.",
            max_seconds=f"{max_seconds:g}",
            **fields,
        )
        self.max_seconds = max_seconds


class Cancelled(SpeechmeshError):
    """The caller went away (cancelled, disconnected or past its deadline); work stopped."""

    reason = "CANCELLED"


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
