"""Liveness, readiness (every upstream SERVING but per-model TTS pods) and Prometheus metrics; no auth."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter()


@router.get("/healthz")
async def liveness() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: {"description": "Every required upstream is SERVING.", "content": {"application/json": {}}},
        503: {
            "description": "Some required upstream is not SERVING; each upstream's state is listed.",
            "content": {"application/json": {}},
        },
    },
)
async def readiness(request: Request) -> JSONResponse:
    mesh = request.app.state.upstreams
    upstreams = await mesh.health()
    ready = all(state == "SERVING" for name, state in upstreams.items() if mesh.required(name))
    return JSONResponse({"ready": ready, "upstreams": upstreams}, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
