"""Bearer API-key authentication and plan checks, as a FastAPI dependency."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from gateway.errors import ApiError
from gateway.keystore import ApiKey
from gateway.plans import PLANS, Plan

# RFC 9110: a 401 names the scheme the client should use.
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Caller:
    key: ApiKey
    plan: Plan


async def authenticate(request: Request) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(
            401, "unauthorized", "Missing API key: send 'Authorization: Bearer sk-tts-...'.", headers=_CHALLENGE
        )
    key = request.app.state.keys.lookup(secret.strip())
    if key is None:
        raise ApiError(401, "unauthorized", "Invalid or revoked API key.", headers=_CHALLENGE)
    plan = PLANS[key.plan]
    if not plan.api_access:
        raise ApiError(
            403,
            "forbidden",
            f"API access is available on the Pro and Enterprise plans; this key's plan is '{plan.name}'.",
        )
    return Caller(key, plan)
