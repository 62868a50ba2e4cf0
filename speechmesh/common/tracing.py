"""The OpenTelemetry tracer provider of a process, from its `tracing` setting.

`none` (the default) makes no provider: nothing is traced and nothing is paid. `console`
prints finished spans to stderr. `otlp` exports them by OTLP/gRPC to `otlp_endpoint`
(unset: the standard OTEL_EXPORTER_OTLP_ENDPOINT, else localhost:4317), batched off the
request path; the standard OTEL_BSP_* variables tune the batching. The SDK is imported only
when tracing is on.
"""

from __future__ import annotations

from opentelemetry.trace import TracerProvider


def tracer_provider(mode: str, service_name: str, otlp_endpoint: str = "") -> TracerProvider | None:
    if mode == "none":
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if mode == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_endpoint or None)
    else:
        exporter = ConsoleSpanExporter()
    provider = SdkTracerProvider(resource=Resource.create({"service.name": f"speechmesh-{service_name}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def shut_down(provider: TracerProvider | None) -> None:
    """Exports the spans still batched (an SDK provider made here), so a stopping process
    does not lose its last seconds of traces."""
    shutdown = getattr(provider, "shutdown", None)
    if shutdown is not None:
        shutdown()
