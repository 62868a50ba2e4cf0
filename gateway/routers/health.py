"""Liveness and readiness; no auth. (Metrics are on their own port: gateway/metrics.py.)

The gateway is ready when it can serve: its database answers. A service that is down
does not take the gateway out of rotation (its routes answer 503 with Retry-After while the
others serve); `/readyz` lists each capability's state and each endpoint's health.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter()

_STATE = {
    "type": "object",
    "required": ["ready", "database", "capabilities", "upstreams"],
    "properties": {
        "ready": {"type": "boolean"},
        "database": {"enum": ["reachable", "unreachable"]},
        "capabilities": {
            "type": "object",
            "description": "Each deployed service: serving, or unavailable (its routes answer 503).",
            "additionalProperties": {"enum": ["serving", "unavailable"]},
        },
        "upstreams": {
            "type": "object",
            "description": "Each endpoint's gRPC health, checked now.",
            "additionalProperties": {"enum": ["SERVING", "NOT_SERVING", "UNREACHABLE", "UNKNOWN", "SERVICE_UNKNOWN"]},
        },
    },
}


@router.get("/healthz")
async def liveness() -> dict[str, str]:
    """Liveness.

    200 while the gateway process serves HTTP. No key needed."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: {"description": "The gateway can serve.", "content": {"application/json": {"schema": _STATE}}},
        503: {"description": "Its database is unreachable.", "content": {"application/json": {"schema": _STATE}}},
    },
)
async def readiness(request: Request) -> JSONResponse:
    """Readiness.

    200 while the gateway can serve (its database answers), with each capability's state
    and each service endpoint's gRPC health; a service that is down makes only its own
    routes answer 503. No key needed."""
    mesh = request.app.state.mesh
    upstreams = await mesh.health()
    # A service serves when its default endpoint does; per-model endpoints show in `upstreams`.
    capabilities = {
        service: "serving" if upstreams[endpoints[0].name] == "SERVING" else "unavailable"
        for service, endpoints in mesh.endpoints.items()
    }
    database = await request.app.state.stores.reachable()
    body = {
        "ready": database,
        "database": "reachable" if database else "unreachable",
        "capabilities": capabilities,
        "upstreams": upstreams,
    }
    return JSONResponse(body, status_code=200 if database else 503)
