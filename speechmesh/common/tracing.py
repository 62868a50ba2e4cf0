"""The OpenTelemetry tracer provider of a process, from its `tracing` setting.

`none` (the default) makes no provider: nothing is traced and nothing is paid. `console`
prints finished spans to stderr; an OTLP exporter would be one more span processor here.
The SDK is imported only when tracing is on.
"""

from __future__ import annotations

from opentelemetry.trace import TracerProvider


def tracer_provider(mode: str, service_name: str) -> TracerProvider | None:
    if mode == "none":
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = SdkTracerProvider(resource=Resource.create({"service.name": f"speechmesh-{service_name}"}))
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    return provider
