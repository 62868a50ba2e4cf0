"""A failed service call in the public API's terms: the documented HTTP status and code that
stand for it. One table, read by the gateway (which answers with it) and by
`speechmesh.client` (which raises the matching exception).

The canonical gRPC table (INVALID_ARGUMENT 400 bad_request ... DEADLINE_EXCEEDED 504
timeout), refined by the reason in the service's google.rpc.ErrorInfo where the reason
names the failure more precisely than its status code does.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_status import rpc_status

from speechmesh.common import errors
from speechmesh.runtime.status import error_info

BY_STATUS: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "bad_request"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "bad_request"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "unauthorized"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "forbidden"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found"),
    # speechmesh uses FAILED_PRECONDITION for a documented model not installed here.
    grpc.StatusCode.FAILED_PRECONDITION: (404, "not_found"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "rate_limited"),
    grpc.StatusCode.UNAVAILABLE: (503, "model_loading"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "timeout"),
}
# A model at capacity is the page's 503 (its one code for "retry in a few seconds"); it is
# not UNAVAILABLE on the wire, which channels would replay at once.
BY_REASON: dict[str, tuple[int, str]] = {
    errors.PayloadTooLarge.reason: (413, "file_too_large"),
    errors.Overloaded.reason: (503, "model_loading"),
}
INTERNAL = (500, "internal_error")
# Every status a speechmesh service sends carries an ErrorInfo. These, without one, come
# from gRPC itself: INTERNAL or UNKNOWN when a connection is lost mid-call (a service that
# died or is starting: retry as for one that is unreachable), RESOURCE_EXHAUSTED when a
# message passes gRPC's size limit (no speechmesh limit: a fault here).
GRPC_OWN: dict[grpc.StatusCode, grpc.StatusCode] = {
    grpc.StatusCode.INTERNAL: grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.UNKNOWN: grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED: grpc.StatusCode.INTERNAL,
}


@dataclass(frozen=True)
class Documented:
    status: int
    code: str
    fields: dict[str, str]  # the ErrorInfo's metadata (`param`, `model`, `retry_after_seconds`, ...)
    grpc_code: grpc.StatusCode  # what it stands for: gRPC's own failures read as GRPC_OWN says
    reason: str | None  # the service's reason; None when gRPC itself ended the call


def documented(error: grpc.aio.AioRpcError) -> Documented:
    try:
        # grpc-status types from_call for sync calls; an aio error has the same accessors.
        info = error_info(rpc_status.from_call(error))  # type: ignore[arg-type]
    except ValueError:  # details that do not match the status: gRPC replaced a service's own
        info = None
    grpc_code = error.code()
    if info is None:
        grpc_code = GRPC_OWN.get(grpc_code, grpc_code)
    reason = info.reason if info is not None else None
    status, code = BY_REASON.get(reason or "") or BY_STATUS.get(grpc_code, INTERNAL)
    return Documented(status, code, dict(info.metadata) if info is not None else {}, grpc_code, reason)
