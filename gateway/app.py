"""`create_app(settings)`: the FastAPI application with its upstream channels and key store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway.audit import CloneAudit
from gateway.connection import ConnectionGuard
from gateway.errors import install_error_handlers
from gateway.keystore import KeyStore
from gateway.openapi import install_openapi
from gateway.previews import PreviewCache
from gateway.routers import catalog, clone, health, openai_audio, openai_speech, stt, tts
from gateway.settings import GatewaySettings
from gateway.signing import UrlSigner
from gateway.upstreams import Upstreams


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.keys = KeyStore(settings.database_path)
        app.state.audit = CloneAudit(settings.database_path)
        app.state.upstreams = Upstreams(settings)
        app.state.previews = PreviewCache()
        secret = settings.url_signing_secret
        app.state.signer = UrlSigner(
            secret.get_secret_value().encode() if secret else app.state.keys.url_signing_secret(),
            settings.signed_url_seconds,
        )
        try:
            yield
        finally:
            app.state.previews.close()
            await app.state.upstreams.close()
            app.state.keys.close()
            app.state.audit.close()

    app = FastAPI(
        title="speechmesh",
        description="Self-hosted speech API: the documented /v1/ REST API over gRPC services.",
        version="0.1.0",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(
        ConnectionGuard,
        idle_seconds=settings.body_idle_seconds,
        min_bytes_per_second=settings.body_min_bytes_per_second,
    )
    routers = (
        tts.router,
        clone.router,
        stt.router,
        openai_speech.router,
        openai_audio.router,
        catalog.router,
        health.router,
    )
    for router in routers:
        app.include_router(router)
    return app
