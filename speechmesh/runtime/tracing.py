"""OpenTelemetry server interceptor: a span for every RPC, child of the caller's span
(its context arrives in the call's metadata), when the service has a tracer provider."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import TracerProvider


def tracing_interceptors(provider: TracerProvider | None) -> list[Any]:
    if provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

    # Health's Watch writes through its context instead of yielding, which the interceptor
    # cannot wrap (it fails the call); and health checks are not worth a span each.
    return [aio_server_interceptor(tracer_provider=provider, filter_=filters.negate(filters.health_check()))]
