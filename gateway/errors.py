"""The documented error JSON, and failed service calls answered in it (the table from gRPC
status to HTTP status + code is `speechmesh/clients/documented.py`).

Every error leaves as `{"error": {"code", "message", ...fields}}`. Services attach a
google.rpc.ErrorInfo to their status; its metadata become the extra fields (e.g.
`param`, `model`). Unexpected exceptions are logged and answered with a generic 500 by
the admission middleware (gateway/admission.py): a stack trace never reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from speechmesh.clients.calls import called
from speechmesh.clients.documented import GRPC_OWN, INTERNAL, documented
from speechmesh.common.errors import Overloaded

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **fields: object
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.fields = fields


def error_response(
    status: int,
    code: str,
    message: str,
    fields: Mapping[str, object] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, **(fields or {})}}, status_code=status, headers=headers
    )


@dataclass(frozen=True)
class RpcFailure:
    """A failed upstream call in the API's words."""

    status: int
    code: str
    message: str
    fields: dict[str, str]
    unavailable: bool  # the upstream is down, starting or at capacity: worth a retry later
    retry_after: int | None = None  # seconds, when the upstream said (a model at capacity)


def rpc_failure(error: grpc.aio.AioRpcError) -> RpcFailure:
    found = documented(error)
    fields, grpc_code = found.fields, found.grpc_code
    if found.reason is None and error.code() in GRPC_OWN:
        log.warning("upstream call failed in gRPC: %s: %s", error.code().name, error.details())
    message = error.details() or ""
    unavailable = grpc_code is grpc.StatusCode.UNAVAILABLE
    retry_after = None
    if found.reason == Overloaded.reason:
        unavailable = True
        seconds = fields.pop("retry_after_seconds", "")
        retry_after = max(1, int(seconds)) if seconds.isdigit() else 1
        fields["reason"] = "overloaded"
    if unavailable and found.reason is None:
        message = "The upstream service is not reachable yet; retry in a few seconds."
    elif (found.status, found.code) == INTERNAL:
        log.error("upstream error %s: %s", grpc_code.name, message, extra={"grpc_code": grpc_code.name})
        message = "Internal server error; please retry later."
        fields = {}
    return RpcFailure(found.status, found.code, message, fields, unavailable, retry_after)


def rpc_error_response(error: grpc.aio.AioRpcError, request: Request) -> JSONResponse:
    failure = rpc_failure(error)
    headers = None
    if failure.retry_after is not None:
        headers = {"Retry-After": str(failure.retry_after)}
    elif failure.unavailable:
        # How long until the upstream should be back, from its watched health.
        headers = {"Retry-After": str(request.app.state.mesh.availability.retry_after(called()))}
    return error_response(failure.status, failure.code, failure.message, failure.fields, headers)


def _validation_message(error: RequestValidationError) -> tuple[str, dict]:
    first = error.errors()[0]
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    param = ".".join(loc)
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON.", {}
    if first.get("type") == "missing":
        return f"'{param}' is required.", {"param": param}
    detail = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return (f"'{param}': {detail}." if param else f"{detail}."), ({"param": param} if param else {})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.fields, error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        message, fields = _validation_message(error)
        return error_response(400, "bad_request", message, fields)

    @app.exception_handler(grpc.aio.AioRpcError)
    async def rpc_error(request: Request, error: grpc.aio.AioRpcError) -> JSONResponse:
        return rpc_error_response(error, request)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 404:
            return error_response(404, "not_found", f"No endpoint {request.method} {request.url.path}.")
        if error.status_code == 405:
            # Starlette names the allowed methods in the Allow header, as RFC 9110 requires.
            return error_response(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed on {request.url.path}.",
                headers=error.headers,
            )
        return error_response(error.status_code, "bad_request", str(error.detail), headers=error.headers)

    @app.exception_handler(ClientDisconnect)
    async def client_left(request: Request, _: ClientDisconnect) -> JSONResponse:
        # Nobody reads this reply; the work for the request stops here.
        log.info("client disconnected while sending its request", extra={"path": request.url.path})
        return error_response(400, "bad_request", "The client closed the connection before its request was complete.")
