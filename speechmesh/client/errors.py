"""The client's exceptions: one class per documented error code, raised over REST and gRPC alike.

Each carries the documented `code` (`not_found`, `rate_limited`, ...), the HTTP `status`
the gateway answers it with, the `message`, and the error's further fields (`param`,
`credits_required`, `list_url`, ...) in `fields`. A REST error is built from the gateway's
`{"error": {...}}` JSON (`from_body`); a gRPC error from its status (`speechmesh.client.rpc_errors`).
A code this version does not know still raises, as `ApiError` with that code.
"""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """Base class of every error the API answers."""

    code = "error"
    status = 0

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        fields: Mapping[str, object] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        # An unknown code keeps its own code and status on the base class.
        self.code = code or type(self).code
        self.status = status or type(self).status
        self.fields = dict(fields or {})
        # Seconds to wait before retrying, when the server said (`Retry-After`).
        self.retry_after = retry_after

    @property
    def param(self) -> str | None:
        """The request field the error is about, when it names one."""
        value = self.fields.get("param")
        return None if value is None else str(value)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class BadRequestError(ApiError):
    """A parameter is missing, malformed or out of range (`param` names it)."""

    code, status = "bad_request", 400


class UnauthorizedError(ApiError):
    """The API key is missing, invalid or revoked."""

    code, status = "unauthorized", 401


class InsufficientCreditsError(ApiError):
    """The key's balance does not cover the request; nothing was done or charged."""

    code, status = "insufficient_credits", 402

    @property
    def credits_required(self) -> int | None:
        return integer(self.fields.get("credits_required"))

    @property
    def credits_available(self) -> int | None:
        return integer(self.fields.get("credits_available"))


class ForbiddenError(ApiError):
    """The key's plan has no API access."""

    code, status = "forbidden", 403


class NotFoundError(ApiError):
    """Unknown model, voice or result, or a documented model not installed here."""

    code, status = "not_found", 404


class RequestTimeoutError(ApiError):
    """The request's headers or body did not reach the gateway in time."""

    code, status = "request_timeout", 408


class FileTooLargeError(ApiError):
    """The upload, body or audio is larger or longer than the endpoint accepts."""

    code, status = "file_too_large", 413


class RateLimitedError(ApiError):
    """Over the plan's requests a minute or at once; retry after `retry_after` seconds."""

    code, status = "rate_limited", 429


class InternalServerError(ApiError):
    """A server fault (the details are in the server's log, never in the answer)."""

    code, status = "internal_error", 500


class ModelLoadingError(ApiError):
    """The model or its service is loading, restarting or at capacity; retry after `retry_after`."""

    code, status = "model_loading", 503


class DeadlineExceededError(ApiError):
    """The call did not finish within its deadline (the documented `timeout`)."""

    code, status = "timeout", 504


ERROR_BY_CODE: dict[str, type[ApiError]] = {cls.code: cls for cls in ApiError.__subclasses__()}
# For an answer without the error JSON (a proxy's 502 page): the class of its status.
_BY_STATUS = {cls.status: cls for cls in ERROR_BY_CODE.values()}


def from_body(status: int, body: object, retry_after: int | None = None) -> ApiError:
    """The error of a response with `status` and parsed JSON `body` (anything else: no fields)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    fields = {key: value for key, value in error.items() if key not in ("code", "message")}
    code = str(error.get("code") or "")
    cls = ERROR_BY_CODE.get(code) or _BY_STATUS.get(status, ApiError)
    message = str(error.get("message") or f"HTTP {status}")
    return cls(message, code=code or None, status=status, fields=fields, retry_after=retry_after)


def integer(value: object) -> int | None:
    """A numeric field: JSON numbers over REST, strings in gRPC's error metadata."""
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None
