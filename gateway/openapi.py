"""The OpenAPI document: what each route takes and every status it can answer, truthfully.

FastAPI documents what it parses itself. This gateway reads its bodies itself (JSON after
authentication, multipart while streaming: `gateway/body.py`, `gateway/uploads.py`), and
answers validation errors with 400, never FastAPI's 422. So routes declare their bodies
and error statuses with the helpers here, and `install_openapi` removes the 422s FastAPI
adds and names the bearer-key scheme. Schemathesis checks the result against the running
gateway in CI (tests/test_openapi.py).

Every description has one source: an operation's summary and description are its route
function's docstring (first paragraph, then the rest), a body field's or a response
field's its `Field(description=...)` in `gateway/schemas.py`, a success response's its
model's docstring, and errors and headers the tables here. docs/api.md links to the
served document instead of repeating them (tests/test_openapi_descriptions.py checks that
nothing is left undescribed).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIWebSocketRoute
from pydantic import BaseModel
from starlette.routing import BaseRoute

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
_STRING = {"schema": {"type": "string"}}
# Headers of error responses, by status.
ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer: the scheme the key is sent with.", **_STRING}},
    429: {
        "Retry-After": {
            "description": "Seconds until a request fits the plan's limits again (1 for requests at once).",
            **_INTEGER,
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds the model or service should still take to load, or its queue to drain.",
            **_INTEGER,
        }
    },
}
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

REQUEST_ID = {"X-Request-Id": {"description": "This request's id, also in the gateway's log line for it.", **_STRING}}
# What served a request, on its 200 (`ticket.describe` in the routers sets them).
SERVED_HEADERS: dict[str, dict[str, Any]] = {
    "X-Model": {"description": "The model that did the work.", **_STRING},
    "X-Voice": {"description": "The voice that spoke (an alias names its real voice).", **_STRING},
    "X-Language": {"description": "ISO 639-1 code of the language spoken.", **_STRING},
    "X-Base-Voice": {"description": "The built-in voice the clone was adapted from.", **_STRING},
    "X-Speaker-Similarity": {
        "description": "d-vector cosine similarity (-1 to 1, e.g. 0.620) of the output to the target speaker.",
        **_STRING,
    },
    "X-Base-Similarity": {"description": "The same similarity of the base voice before adaptation.", **_STRING},
    "X-Source-Similarity": {"description": "The same similarity of the input, before conversion.", **_STRING},
    "X-Translator": {"description": "What translated: apertium, whisper or none (same language).", **_STRING},
    "Content-Disposition": {"description": 'attachment; filename="<what>.<ext>"', **_STRING},
    "Cache-Control": {"description": "public for a signed URL, private for a key's request; a day.", **_STRING},
}
_SPOKE = ("X-Model", "X-Voice", "X-Language")
_FILE = ("X-Model", "Content-Disposition")
_CONVERTED = (*_FILE, "X-Speaker-Similarity", "X-Source-Similarity")
ROUTE_HEADERS: dict[str, tuple[str, ...]] = {
    "/v1/tts/": _SPOKE,
    "/v1/audio/speech": _SPOKE,
    "/v1/tts/clone/": ("X-Model", "X-Base-Voice", "X-Speaker-Similarity", "X-Base-Similarity"),
    "/v1/stt/": ("X-Model",),
    "/v1/audio/transcriptions": ("X-Model",),
    "/v1/audio/translations": ("X-Model",),
    "/v1/audio/enhance/": _FILE,
    "/v1/audio/dereverb/": _FILE,
    "/v1/audio/separate/": _FILE,
    "/v1/audio/convert/": _FILE,
    "/v1/voice-convert/": _CONVERTED,
    "/v1/speech-to-speech/": _CONVERTED,
    "/v1/voice-chat/": _SPOKE,
    "/v1/speech-translate/": ("X-Voice", "X-Translator"),
    "/v1/results/{result_id}": ("Content-Disposition",),
    "/v1/voices/preview/{voice_id}.mp3": ("Cache-Control",),
}

BEARER = "bearer"
AUTHENTICATED: dict[str, Any] = {"security": [{BEARER: []}]}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` entries of these error statuses, each with the error JSON schema."""
    return {
        code: {
            "model": ErrorOut,
            "description": ERROR_DESCRIPTIONS[code],
            **({"headers": dict(ERROR_HEADERS[code])} if code in ERROR_HEADERS else {}),
        }
        for code in codes
    }


def binary(*media_types: str) -> dict[str, Any]:
    """A 200 answered with a file in one of `media_types`."""
    return {"content": {media: {"schema": {"type": "string", "format": "binary"}} for media in media_types}}


def request_body(model: type[BaseModel], media_type: str, *, or_json: type[BaseModel] | None = None) -> dict[str, Any]:
    """`openapi_extra` declaring a required body of `media_type` shaped like `model`, or, for
    a route that takes either, a JSON body shaped like `or_json`."""
    schema = model.model_json_schema()
    content: dict[str, Any] = {"schema": schema}
    if media_type == "multipart/form-data":
        files = [name for name, field in schema["properties"].items() if field.get("format") == "binary"]
        content["encoding"] = {name: {"contentType": "application/octet-stream"} for name in files}
    bodies = {media_type: content}
    if or_json is not None:
        bodies["application/json"] = {"schema": or_json.model_json_schema()}
    return {"requestBody": {"required": True, "content": bodies}}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            sockets = websocket_routes(app.routes)
            description = "\n\n".join([app.description, *(_websocket_section(route) for route in sockets)])
            document = get_openapi(title=app.title, version=app.version, description=description, routes=app.routes)
            components = document.setdefault("components", {})
            for route, path in document["paths"].items():
                for operation in path.values():
                    operation["responses"].pop("422", None)
                    _summarize(operation)
                    _describe_success(operation, components.get("schemas", {}))
                    _document_headers(route, operation)
            if sockets:
                # OpenAPI has no WebSockets; the extension lists them for tools that read it.
                document["x-websockets"] = {route.path: _docstring(route.endpoint) for route in sockets}
            for unused in ("HTTPValidationError", "ValidationError"):
                components.get("schemas", {}).pop(unused, None)
            components["securitySchemes"] = {
                BEARER: {"type": "http", "scheme": "bearer", "description": "An API key: sk-tts-..."}
            }
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise it


def flat_routes(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """Every route, also those inside included routers (FastAPI 0.165 keeps each as one entry)."""
    found: list[BaseRoute] = []
    for route in routes:
        if hasattr(route, "original_router"):
            found += flat_routes(route.original_router.routes)
        else:
            found.append(route)
    return found


def websocket_routes(routes: Sequence[BaseRoute]) -> list[APIWebSocketRoute]:
    return [route for route in flat_routes(routes) if isinstance(route, APIWebSocketRoute)]


def _split(docstring: str) -> dict[str, str]:
    """A docstring as summary (its first paragraph, on one line) and description (the rest)."""
    summary, _, rest = docstring.partition("\n\n")
    return {"summary": " ".join(summary.split()).removesuffix("."), "description": rest.strip()}


def _docstring(endpoint: Any) -> dict[str, str]:
    return _split(inspect.cleandoc(endpoint.__doc__ or ""))


def _summarize(operation: dict[str, Any]) -> None:
    """FastAPI made the whole docstring the description (the summary from the function's name)."""
    if operation.get("description"):
        operation.update(_split(operation["description"]))


def _websocket_section(route: APIWebSocketRoute) -> str:
    doc = _docstring(route.endpoint)
    return f"## WebSocket {route.path}: {doc['summary']}\n\n{doc['description']}"


_FASTAPI_DEFAULT = "Successful Response"


def _describe_success(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """A 2xx FastAPI left undescribed takes its body model's docstring, else the summary."""
    for status, response in operation["responses"].items():
        if not status.startswith("2") or response.get("description") != _FASTAPI_DEFAULT:
            continue
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        model = schemas.get(schema.get("$ref", "").rpartition("/")[2], {})
        response["description"] = model.get("description") or operation["summary"]


def _document_headers(route: str, operation: dict[str, Any]) -> None:
    """Every response carries X-Request-Id; a 200 what served it; every response to a keyed
    request the rate-limit headers; billed ones the credits."""
    for status, response in operation["responses"].items():
        response.setdefault("headers", {}).update(REQUEST_ID)
        if status == "200":
            response["headers"].update({name: SERVED_HEADERS[name] for name in ROUTE_HEADERS.get(route, ())})
    if {BEARER: []} not in operation.get("security", []):
        return
    billed = route in PRICES
    for status, response in operation["responses"].items():
        headers = response["headers"]
        if status not in ("401", "403"):  # a request refused before its key's limits were read
            headers.update(RATE_LIMIT_HEADERS)
        if billed and status in ("200", "202", "402"):
            # A 402 says what is left; nothing was used.
            remaining = {"X-Credits-Remaining": CREDIT_HEADERS["X-Credits-Remaining"]}
            headers.update(CREDIT_HEADERS if status != "402" else remaining)
