"""Opening a gRPC channel the way every speechmesh client does.

- Round-robin over every address the target resolves to (gRPC's default, pick-first,
  would send all calls to one replica).
- Retries of idempotent methods that failed as UNAVAILABLE, through gRPC's service config,
  so gRPC replays them (within its retry buffer) before any reply arrived.
- Keepalive pings while calls are in flight, so a peer that vanished without closing
  (a node lost, a NAT entry dropped) fails its calls instead of leaving them hanging.
  The services' runtime accepts pings this often (speechmesh/runtime/server.py).
- Reconnection within a second: gRPC's default backoff grows to two minutes, failing
  calls (503) long after a restarted service is SERVING again.
- OpenTelemetry client interceptors when a tracer provider is given: the call's span is
  the parent of the service's, across the hop.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import grpc
from opentelemetry.trace import TracerProvider

_RECONNECT_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def service_config(idempotent: Iterable[tuple[str, str]], attempts: int) -> str:
    """gRPC's service config (JSON): round-robin, and retries of the (service, method) pairs."""
    config: dict[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}]}
    names = [{"service": service, "method": method} for service, method in idempotent]
    if names and attempts > 1:
        config["methodConfig"] = [
            {
                "name": names,
                "retryPolicy": {
                    "maxAttempts": attempts,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    return json.dumps(config)


def open_channel(
    address: str,
    *,
    idempotent: Sequence[tuple[str, str]],
    attempts: int,
    keepalive_seconds: float,
    max_receive_bytes: int,
    tracer_provider: TracerProvider | None,
) -> grpc.aio.Channel:
    options: list[tuple[str, Any]] = [
        *_RECONNECT_OPTIONS,
        ("grpc.service_config", service_config(idempotent, attempts)),
        ("grpc.keepalive_time_ms", round(keepalive_seconds * 1000)),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.max_receive_message_length", max_receive_bytes),
    ]
    interceptors: list[Any] = []
    if tracer_provider is not None:
        # Imported only when tracing is on: the instrumentation pulls in wrapt and more.
        from opentelemetry.instrumentation.grpc import aio_client_interceptors, filters

        # Health checks and watches are not worth a span each.
        interceptors = aio_client_interceptors(
            tracer_provider=tracer_provider, filter_=filters.negate(filters.health_check())
        )
    return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors or None)
