"""OpenTelemetry hook: server spans for every RPC when tracing is switched on.

`tracing="console"` prints spans to stderr; wiring an OTLP exporter is a matter of
adding a span processor here. Off by default so a plain run pays nothing for it.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter


def tracing_interceptors(mode: str, service_name: str) -> list[Any]:
    if mode == "none":
        return []
    provider = TracerProvider(resource=Resource.create({"service.name": f"speechmesh-{service_name}"}))
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    return [aio_server_interceptor(tracer_provider=provider)]
