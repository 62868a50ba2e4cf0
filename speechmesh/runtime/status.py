"""The one table from typed speechmesh errors to gRPC status codes.

Errors leave a service as a status code, a message, and a google.rpc.ErrorInfo detail
(reason + fields) in the `grpc-status-details-bin` trailer, which the gateway reads to
build the documented error JSON.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from speechmesh.common import errors

DOMAIN = "speechmesh.dev"

STATUS_BY_ERROR: dict[type[errors.SpeechmeshError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.InvalidAudio: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.ModelUnavailable: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ModelLoading: grpc.StatusCode.UNAVAILABLE,
    errors.UpstreamUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.PayloadTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    # Not UNAVAILABLE: clients' gRPC retry policy replays UNAVAILABLE at once, which would
    # turn one refusal into a burst of them (speechmesh/clients/channels.py).
    errors.Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Cancelled: grpc.StatusCode.CANCELLED,
}


def status_code_for(error: errors.SpeechmeshError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return grpc.StatusCode.INTERNAL


def to_grpc_status(code: grpc.StatusCode, message: str, reason: str, fields: dict[str, str]) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=fields)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=[detail])
    return rpc_status.to_status(status)


def error_info(status: status_pb2.Status | None) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a received status, if it has one."""
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None
