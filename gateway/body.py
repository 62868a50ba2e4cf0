"""JSON request bodies read after authentication, within the caller's plan.

FastAPI reads and parses a declared body parameter before any dependency runs, so a
client without a key could make the gateway read and parse hundreds of megabytes before
its 401. Routes with JSON bodies therefore take them through `json_body(Model)`, a
dependency that admits the request first (gateway/admission.py), then reads at most what the caller's plan can
need, counting bytes as they arrive (a declared Content-Length above the bound is
refused before reading), and validates with the model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from gateway.admission import Ticket, admit
from gateway.errors import ApiError
from gateway.plans import Plan

M = TypeVar("M", bound=BaseModel)

# A character of text can take 12 bytes of JSON (a surrogate pair of \\uXXXX escapes);
# the other fields of a body are short.
_JSON_BYTES_PER_CHAR = 12
_JSON_OVERHEAD_BYTES = 16 * 1024


def json_limit(plan: Plan, texts: int = 1) -> int:
    """The largest JSON body a caller on `plan` can need for `texts` texts (a batch: many)."""
    return texts * plan.max_text_chars * _JSON_BYTES_PER_CHAR + _JSON_OVERHEAD_BYTES


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413, "file_too_large", f"The request body is larger than the {limit:,} bytes this key's plan can need."
    )


def json_body(model: type[M], texts: int = 1) -> Callable[..., Awaitable[M]]:
    """A dependency giving the request's body as `model` (of at most `texts` texts to speak),
    read only once the key is known."""

    async def dependency(request: Request, ticket: Ticket = Depends(admit)) -> M:
        raw = await read_body(request, json_limit(ticket.caller.plan, texts))
        try:
            return model.model_validate_json(raw)
        except ValidationError as error:
            raise RequestValidationError(error.errors(include_url=False, include_input=False)) from None

    return dependency
