"""`create_app(settings)`: the FastAPI application with its service clients, stores and
admission point."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from opentelemetry.trace import TracerProvider
from prometheus_client import start_http_server

from gateway.admission import AdmissionMiddleware
from gateway.connection import ConnectionGuard
from gateway.errors import install_error_handlers
from gateway.metrics import HttpMetricsMiddleware
from gateway.openapi import install_openapi
from gateway.policy import PlanPolicy
from gateway.previews import PreviewCache
from gateway.ratelimit import RequestRate, open_slots
from gateway.routers import (
    audio_tools,
    batch,
    catalog,
    clone,
    health,
    openai_audio,
    openai_speech,
    playground,
    speech_translate,
    stt,
    tasks,
    tts,
    voice_changer,
    voice_chat,
    voice_chat_live,
)
from gateway.settings import GatewaySettings, client_config
from gateway.signing import UrlSigner
from gateway.store.stores import open_stores
from gateway.tasks.queue import TaskQueue, open_huey
from gateway.tiers import ModelTiers
from speechmesh.clients.mesh import Mesh
from speechmesh.common.tracing import shut_down
from speechmesh.common.tracing import tracer_provider as configured_tracer_provider


def create_app(settings: GatewaySettings, tracer_provider: TracerProvider | None = None) -> FastAPI:
    """Spans of each request and its service calls go to `tracer_provider`, or to the one
    `settings.tracing` makes (none by default)."""
    own_provider = tracer_provider is None
    provider = tracer_provider or configured_tracer_provider(settings.tracing, "gateway", settings.otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.stores = stores = await open_stores(settings)
        rate, slots = RequestRate(settings.redis_url), open_slots(settings.redis_url)
        app.state.mesh = mesh = Mesh(client_config(settings), provider)
        tiers = ModelTiers(mesh)
        app.state.policy = PlanPolicy(rate, slots, stores.credits, tiers, settings.credit_hold_seconds)
        app.state.tasks = TaskQueue(open_huey(settings), settings.webhook_retry_seconds)
        app.state.previews = PreviewCache()
        secret = settings.url_signing_secret
        app.state.signer = UrlSigner(
            secret.get_secret_value().encode() if secret else await app.state.stores.keys.url_signing_secret(),
            settings.signed_url_seconds,
        )
        metrics_server = (
            start_http_server(settings.metrics_port, addr=settings.host)[0] if settings.metrics_port else None
        )
        try:
            yield
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
            if own_provider:
                shut_down(provider)
            app.state.previews.close()
            await app.state.mesh.close()
            await slots.close()
            await rate.close()
            await app.state.stores.close()

    app = FastAPIOffline(
        title="speechmesh",
        description="Self-hosted speech API: the documented /v1/ REST API over gRPC services.",
        version="0.1.0",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    install_error_handlers(app)
    install_openapi(app)
    # The last added runs first: metrics, tracing, then admission (its headers and settlement also
    # cover the connection guard's 408s and a cancelled request), then the guard.
    app.add_middleware(
        ConnectionGuard,
        idle_seconds=settings.body_idle_seconds,
        min_bytes_per_second=settings.body_min_bytes_per_second,
    )
    app.add_middleware(AdmissionMiddleware)
    if provider is not None:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        app.add_middleware(OpenTelemetryMiddleware, tracer_provider=provider)
    # Outermost: a request's latency includes every middleware, and its status is what was sent.
    app.add_middleware(HttpMetricsMiddleware)
    routers = (
        tts.router,
        batch.router,
        clone.router,
        stt.router,
        audio_tools.router,
        voice_changer.router,
        voice_chat.router,
        voice_chat_live.router,
        speech_translate.router,
        openai_speech.router,
        openai_audio.router,
        catalog.router,
        tasks.router,
        health.router,
        playground.router,
    )
    for router in routers:
        app.include_router(router)
    app.mount(playground.PREFIX, playground.files(), name="playground")
    return app
