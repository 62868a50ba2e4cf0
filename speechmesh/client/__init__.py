"""The public Python client of speechmesh: sync and async, over REST or gRPC, with one set of
method names, arguments, results and errors (examples: docs/client.md).

- `RestClient` / `AsyncRestClient`: the public REST API with an API key (httpx). Credits,
  rate limits and plans apply; `last_usage` holds the X-RateLimit-* and X-Credits-* headers
  of the latest response.
- `GrpcClient` / `AsyncGrpcClient`: the services directly, for internal callers (no key, no
  credits). Built on `speechmesh.clients`, the gateway's own client layer: its per-model
  routing, its channels' retry policy (idempotent calls failing as UNAVAILABLE are replayed)
  and its deadlines (`timeout=` per call). `AsyncGrpcClient.live_recognition` streams
  results while audio arrives. The sync client runs the async one on a private event-loop
  thread, so none of that exists twice (`loop_thread`).

Errors: every failure the API answers is raised as a subclass of `ApiError` named for its
documented code (`NotFoundError` is `not_found`, 404), carrying `code`, `status`, `message`,
`fields` (`param`, `credits_required`, ...) and `retry_after`. A gRPC failure raises the
class a REST caller gets for the same failure. These are not `speechmesh.common.errors`:
those are the services' internal vocabulary (reasons such as INVALID_AUDIO,
MODEL_UNAVAILABLE, OVERLOADED, several to one public code, with string fields), raised by
engines and mapped to gRPC status in `speechmesh.runtime.status`; a client's caller needs
the documented code and HTTP status, which no class there carries. The gRPC mapping reads
the services' ErrorInfo with `speechmesh.runtime.status.error_info` and keys its reasons on
those classes' own `reason`, so no reason string is spelled twice.

Neither client imports the gateway or a service (tests/test_client_rest.py checks).
"""

from __future__ import annotations

from speechmesh.client.errors import (
    ApiError,
    BadRequestError,
    DeadlineExceededError,
    FileTooLargeError,
    ForbiddenError,
    InsufficientCreditsError,
    InternalServerError,
    ModelLoadingError,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    UnauthorizedError,
)
from speechmesh.client.grpc_async import AsyncGrpcClient
from speechmesh.client.grpc_sync import GrpcClient
from speechmesh.client.rest import AsyncRestClient, RestClient
from speechmesh.client.results import Analysis, LiveResult, Model, Segment, Transcript, Usage, Voice, Word

__all__ = [
    "Analysis",
    "ApiError",
    "AsyncGrpcClient",
    "AsyncRestClient",
    "BadRequestError",
    "DeadlineExceededError",
    "FileTooLargeError",
    "ForbiddenError",
    "GrpcClient",
    "InsufficientCreditsError",
    "InternalServerError",
    "LiveResult",
    "Model",
    "ModelLoadingError",
    "NotFoundError",
    "RateLimitedError",
    "RequestTimeoutError",
    "RestClient",
    "Segment",
    "Transcript",
    "UnauthorizedError",
    "Usage",
    "Voice",
    "Word",
]
