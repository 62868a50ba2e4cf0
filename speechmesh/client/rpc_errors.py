"""gRPC failures as the client's typed errors: the class a REST caller gets for the same failure.

The documented status and code come from the table the gateway answers with
(`speechmesh.clients.documented`: the canonical gRPC table, refined by the reason of the
typed error the service raised); the ErrorInfo's metadata become the error's fields
(`param`, `model`, ...), and a model at capacity says when to retry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc

from speechmesh.client.errors import ERROR_BY_CODE, ApiError
from speechmesh.clients.documented import documented


def from_rpc_error(error: grpc.aio.AioRpcError) -> ApiError:
    found = documented(error)
    fields: dict[str, object] = dict(found.fields)
    seconds = str(fields.pop("retry_after_seconds", ""))
    retry_after = int(seconds) if seconds.isdigit() else None
    cls = ERROR_BY_CODE.get(found.code, ApiError)
    return cls(
        error.details() or error.code().name,
        code=found.code,
        status=found.status,
        fields=fields,
        retry_after=retry_after,
    )


@contextlib.contextmanager
def api_errors() -> Iterator[None]:
    """Raises a failed call's `AioRpcError` as its typed error (the gRPC error its cause)."""
    try:
        yield
    except grpc.aio.AioRpcError as error:
        raise from_rpc_error(error) from error
