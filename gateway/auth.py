"""Bearer API-key authentication: which key, and so which plan, a request comes with.
What the plan allows is the admission policy's (gateway/policy.py)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from gateway.errors import ApiError
from gateway.plans import PLANS, Plan
from gateway.store.keys import ApiKey, KeyStore

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
    return await caller_of(request.app.state.stores.keys, secret.strip())


async def caller_of(keys: KeyStore, secret: str) -> Caller:
    """The caller an API key stands for; 401 for an unknown or revoked one."""
    key = await keys.lookup(secret)
    if key is None:
        raise ApiError(401, "unauthorized", "Invalid or revoked API key.", headers=_CHALLENGE)
    return Caller(key, PLANS[key.plan])
