"""The OpenAPI document: what each route takes and every status it can answer, truthfully.

FastAPI documents what it parses itself. This gateway reads its bodies itself (JSON after
authentication, multipart while streaming: `gateway/body.py`, `gateway/uploads.py`), and
answers validation errors with 400, never FastAPI's 422. So routes declare their bodies
and error statuses with the helpers here, and `install_openapi` removes the 422s FastAPI
adds and names the bearer-key scheme. Schemathesis checks the result against the running
gateway in CI (tests/test_openapi.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from gateway.pricing import PRICES
from gateway.schemas import ErrorOut

ERROR_DESCRIPTIONS = {
    400: "bad_request: a parameter is missing, malformed or out of range (`param` names it).",
    401: "unauthorized: missing, invalid or revoked API key.",
    402: "insufficient_credits: the key's balance does not cover the request "
    "(`credits_required`, `credits_available`); nothing was done or charged.",
    403: "forbidden: the key's plan has no API access.",
    404: "not_found: unknown model or voice, or a documented model that is not installed here.",
    408: "request_timeout: the request's headers or body did not arrive in time.",
    413: "file_too_large: the upload or body is larger than this endpoint accepts.",
    429: "rate_limited: over the plan's requests per minute or requests at once; retry after `Retry-After` seconds.",
    500: "internal_error: a server fault (details are logged, never sent).",
    503: "model_loading: the model or its service is loading or restarting; retry after `Retry-After` seconds.",
    504: "timeout: the upstream service did not answer within its deadline.",
}
_UPSTREAM = (429, 500, 503, 504)
# Routes that read a body, routes that take a query, routes that take nothing.
BODY_ERRORS = (400, 401, 402, 403, 404, 408, 413, *_UPSTREAM)
QUERY_ERRORS = (400, 401, 403, *_UPSTREAM)
PLAIN_ERRORS = (401, 403, *_UPSTREAM)

_INTEGER = {"schema": {"type": "integer"}}
RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": {"description": "Requests a minute the key's plan allows.", **_INTEGER},
    "X-RateLimit-Remaining": {"description": "Requests left in the last minute's window.", **_INTEGER},
    "X-RateLimit-Reset": {
        "description": "Unix time (s) when the oldest request of the window stops counting.",
        **_INTEGER,
    },
}
CREDIT_HEADERS = {
    "X-Credits-Used": {"description": "Credits this request is charged if it completes; 0 on an error.", **_INTEGER},
    "X-Credits-Remaining": {"description": "The key's balance after this request.", **_INTEGER},
}

BEARER = "bearer"
AUTHENTICATED: dict[str, Any] = {"security": [{BEARER: []}]}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` entries of these error statuses, each with the error JSON schema."""
    return {code: {"model": ErrorOut, "description": ERROR_DESCRIPTIONS[code]} for code in codes}


def binary(*media_types: str) -> dict[str, Any]:
    """A 200 answered with a file in one of `media_types`."""
    return {"content": {media: {"schema": {"type": "string", "format": "binary"}} for media in media_types}}


def request_body(model: type[BaseModel], media_type: str) -> dict[str, Any]:
    """`openapi_extra` declaring a required body of `media_type` shaped like `model`."""
    schema = model.model_json_schema()
    content: dict[str, Any] = {"schema": schema}
    if media_type == "multipart/form-data":
        files = [name for name, field in schema["properties"].items() if field.get("format") == "binary"]
        content["encoding"] = {name: {"contentType": "application/octet-stream"} for name in files}
    return {"requestBody": {"required": True, "content": {media_type: content}}}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for route, path in document["paths"].items():
                for operation in path.values():
                    operation["responses"].pop("422", None)
                    _document_headers(route, operation)
            components = document.setdefault("components", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                components.get("schemas", {}).pop(unused, None)
            components["securitySchemes"] = {
                BEARER: {"type": "http", "scheme": "bearer", "description": "An API key: sk-tts-..."}
            }
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise it


def _document_headers(route: str, operation: dict[str, Any]) -> None:
    """Every response to a keyed request carries the rate-limit headers; billed ones the credits."""
    if {BEARER: []} not in operation.get("security", []):
        return
    billed = route in PRICES
    for status, response in operation["responses"].items():
        headers = response.setdefault("headers", {})
        if status not in ("401", "403"):  # a request refused before its key's limits were read
            headers.update(RATE_LIMIT_HEADERS)
        if billed and status in ("200", "202", "402"):
            # A 402 says what is left; nothing was used.
            remaining = {"X-Credits-Remaining": CREDIT_HEADERS["X-Credits-Remaining"]}
            headers.update(CREDIT_HEADERS if status != "402" else remaining)
