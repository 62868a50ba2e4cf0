"""A server span for every RPC of a service's own methods, the child of the caller's span
(its context arrives in the call's metadata), when the service has a tracer provider.

OpenTelemetry's grpc.aio server interceptor is not used: it can wrap a streaming handler
only when that handler is an async generator, and the service's interceptor answers
streams by writing each reply itself (`interceptor.py` says why). The span is named and
described as that interceptor does it (the full method name; `rpc.system`, `rpc.service`,
`rpc.method`, `rpc.grpc.status_code`), so traces read the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider


class RpcSpans:
    def __init__(self, provider: TracerProvider | None) -> None:
        self._tracer = provider.get_tracer(__name__) if provider is not None else None

    @contextlib.contextmanager
    def span(self, full_method: str, context: grpc.aio.ServicerContext[Any, Any]) -> Iterator[Span]:
        """The call's span, current while it is served (log lines carry its trace id); a
        span that records nothing without a tracer provider."""
        if self._tracer is None:
            yield trace.INVALID_SPAN
            return
        # Binary metadata (`-bin` keys) carries no trace context.
        carrier = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        service, _, method = full_method.lstrip("/").partition("/")
        with self._tracer.start_as_current_span(
            full_method,
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": method},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span


def ended(span: Span, code: grpc.StatusCode) -> None:
    """Records how the call ended on its span."""
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, code.name))
