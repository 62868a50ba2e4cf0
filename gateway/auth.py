"""Bearer API-key authentication: which key, and so which plan, a request comes with.
What the plan allows is the admission policy's (gateway/policy.py)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from gateway.errors import ApiError
from gateway.plans import PLANS, Plan
from gateway.store.keys import ApiKey

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
    key = await request.app.state.stores.keys.lookup(secret.strip())
    if key is None:
        raise ApiError(401, "unauthorized", "Invalid or revoked API key.", headers=_CHALLENGE)
    return Caller(key, PLANS[key.plan])
