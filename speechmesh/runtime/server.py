"""Starting, serving and stopping any speechmesh service the same way.

`create_server` binds, starts the server with health NOT_SERVING, and loads the
engines in the background (off the event loop); when they are loaded and warmed up,
health turns SERVING. A load that stops on an unexpected error is logged and the service
serves what loaded; the rest is listed unavailable (`catalog.LOAD_STOPPED`). `serve` adds
logging, a numba cache of the process's own (`numba_cache`), the metrics endpoint and
SIGTERM handling: health goes NOT_SERVING first (so load balancers drain), then in-flight
calls get `grace_seconds` to finish.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry.trace import TracerProvider
from prometheus_client import start_http_server

from speechmesh.common import tracing as common_tracing
from speechmesh.common.logging import configure_logging
from speechmesh.common.models import ModelCard, ModelState
from speechmesh.common.settings import ServiceSettings
from speechmesh.runtime import metrics, numba_cache
from speechmesh.runtime.admission import Admission
from speechmesh.runtime.blocking import Blocking
from speechmesh.runtime.catalog import ModelCatalogServicer
from speechmesh.runtime.interceptor import ServiceInterceptor
from speechmesh.runtime.tracing import RpcSpans
from speechmesh.v1 import models_pb2, models_pb2_grpc

log = logging.getLogger(__name__)

# Clients ping every 30 s or more while calls are in flight (speechmesh/clients/config.py);
# gRPC's default lets a server take pings without data only every 5 minutes and closes
# the connection of a client that pings more often, which would kill a long
# transcription that sends nothing while the service works.
# A connection lives at most 5 minutes (calls in flight finish on it): a client reconnects
# and re-resolves its target, so replicas added behind a DNS name (a headless Service) get
# calls within minutes instead of never.
_SERVER_OPTIONS = [
    ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
    ("grpc.max_connection_age_ms", 300_000),
]
CATALOG_SERVICE = models_pb2.DESCRIPTOR.services_by_name["ModelCatalog"].full_name


class EngineSet(Protocol):
    def load(self) -> None:
        """Loads and warms every engine (blocking); failures become unavailable models."""

    def models(self) -> list[ModelCard]:
        """Cards of every model the service knows."""


@dataclass(frozen=True)
class ServiceSpec:
    """What makes one service itself: its name, its gRPC services, its servicers."""

    name: str
    service_names: tuple[str, ...]
    add_servicers: Callable[[grpc.aio.Server, Any, Blocking], None]


@dataclass
class _Running:
    health: HealthServicer
    blocking: Blocking
    loading: asyncio.Task[None]
    tracer_provider: TracerProvider | None  # made here from the settings: shut down with the server


_RUNNING: weakref.WeakKeyDictionary[grpc.aio.Server, _Running] = weakref.WeakKeyDictionary()


async def create_server(
    spec: ServiceSpec, settings: ServiceSettings, engines: EngineSet, tracer_provider: TracerProvider | None = None
) -> tuple[grpc.aio.Server, int]:
    """Starts the service on `settings.host:settings.port` and returns it with its port.
    Spans go to `tracer_provider`, or to the one `settings.tracing` makes."""
    in_flight = settings.max_in_flight or settings.workers
    blocking = Blocking(settings.workers, Admission(spec.name, in_flight, settings.max_queued))
    ready = asyncio.Event()
    own = spec.service_names
    provider = tracer_provider or common_tracing.tracer_provider(settings.tracing, spec.name, settings.otlp_endpoint)
    interceptor = ServiceInterceptor(
        spec.name, gated=own, measured=(*own, CATALOG_SERVICE), ready=ready, spans=RpcSpans(provider)
    )
    server = grpc.aio.server(interceptors=[interceptor], options=_SERVER_OPTIONS)

    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    models_pb2_grpc.add_ModelCatalogServicer_to_server(ModelCatalogServicer(engines.models, ready), server)
    spec.add_servicers(server, engines, blocking)
    reflection.enable_server_reflection(
        (*own, CATALOG_SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    for name in ("", *own):
        await health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    metrics.SERVICE_READY.labels(spec.name).set(0)
    await server.start()

    async def load() -> None:
        try:
            await blocking.run(engines.load)
        except Exception:
            # Engine sets turn each engine's failure into an unavailable model; this is a bug
            # past that. Serving what loaded beats NOT_SERVING for ever: the catalog lists each
            # model the load did not reach as unavailable, pointing here (`catalog.LOAD_STOPPED`).
            log.exception("loading engines stopped on an unexpected error", extra={"service": spec.name})
        for name in ("", *own):
            await health.set(name, health_pb2.HealthCheckResponse.SERVING)
        ready.set()
        metrics.SERVICE_READY.labels(spec.name).set(1)
        for card in engines.models():
            metrics.MODEL_AVAILABLE.labels(spec.name, card.id).set(int(card.state is not ModelState.UNAVAILABLE))
        log.info("serving", extra={"service": spec.name, "port": port})

    own_provider = provider if tracer_provider is None else None
    _RUNNING[server] = _Running(health, blocking, asyncio.create_task(load()), own_provider)
    return server, port


async def stop_server(server: grpc.aio.Server, grace: float) -> None:
    """Drains health, lets in-flight calls finish for `grace` seconds, then stops."""
    running = _RUNNING.pop(server, None)
    if running is not None:
        await running.health.enter_graceful_shutdown()
        running.loading.cancel()
    await server.stop(grace)
    if running is not None:
        running.blocking.shutdown()
        common_tracing.shut_down(running.tracer_provider)


async def serve(spec: ServiceSpec, settings: ServiceSettings, engines: EngineSet) -> None:
    configure_logging(settings.log_level, settings.log_json)
    cache = numba_cache.claim(spec.name)
    log.info("numba cache", extra={"service": spec.name, "folder": str(cache)})
    server, port = await create_server(spec, settings, engines)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host)
    log.info("listening", extra={"service": spec.name, "address": f"{settings.host}:{port}"})
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("shutting down", extra={"service": spec.name, "grace_seconds": settings.grace_seconds})
    await stop_server(server, settings.grace_seconds)
