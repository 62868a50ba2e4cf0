"""API keys: `KeyStore` (the interface) and its SQL implementation.

Keys look like `sk-tts-<43 url-safe characters>`; only a SHA-256 of each is stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.finishing import finishing
from gateway.store.tables import api_keys, url_signing_secret

KEY_PREFIX = "sk-tts-"
_SHOWN = 12  # characters of a secret kept in clear


@dataclass(frozen=True)
class ApiKey:
    id: int
    prefix: str
    name: str
    plan: str
    created_at: str
    revoked_at: str | None


class KeyStore(Protocol):
    async def create(self, name: str, plan: str) -> tuple[ApiKey, str]:
        """A new key and its secret (the only time the secret is seen)."""

    async def lookup(self, secret: str) -> ApiKey | None:
        """The live key for `secret`, or None if it is unknown or revoked."""

    async def list(self) -> list[ApiKey]: ...

    async def revoke(self, key_id: int) -> bool:
        """Whether a live key with that id was revoked."""

    async def url_signing_secret(self) -> bytes:
        """The URL-signing secret, made on first use (the first process to ask wins)."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


_COLUMNS = (
    api_keys.c.id,
    api_keys.c.prefix,
    api_keys.c.name,
    api_keys.c.plan,
    api_keys.c.created_at,
    api_keys.c.revoked_at,
)


@finishing
class SqlKeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, name: str, plan: str) -> tuple[ApiKey, str]:
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        created = _now()
        async with self._engine.begin() as connection:
            result = await connection.execute(
                insert(api_keys)
                .values(key_hash=_hash(secret), prefix=secret[:_SHOWN], name=name, plan=plan, created_at=created)
                .returning(api_keys.c.id)
            )
            key_id = result.scalar_one()
        return ApiKey(key_id, secret[:_SHOWN], name, plan, created, None), secret

    async def lookup(self, secret: str) -> ApiKey | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(*_COLUMNS).where(api_keys.c.key_hash == _hash(secret), api_keys.c.revoked_at.is_(None))
                )
            ).first()
        return ApiKey(*row) if row else None

    async def list(self) -> list[ApiKey]:
        async with self._engine.connect() as connection:
            rows = (await connection.execute(select(*_COLUMNS).order_by(api_keys.c.id))).all()
        return [ApiKey(*row) for row in rows]

    async def revoke(self, key_id: int) -> bool:
        async with self._engine.begin() as connection:
            result = await connection.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
        return result.rowcount == 1

    async def url_signing_secret(self) -> bytes:
        query = select(url_signing_secret.c.secret)
        async with self._engine.connect() as connection:
            found = (await connection.execute(query)).scalar_one_or_none()
        if found is None:
            # Processes starting together race to make it: the losers' inserts conflict
            # (on any database) and they read the winner's.
            with contextlib.suppress(IntegrityError):
                async with self._engine.begin() as connection:
                    await connection.execute(insert(url_signing_secret).values(id=1, secret=secrets.token_bytes(32)))
            async with self._engine.connect() as connection:
                found = (await connection.execute(query)).scalar_one()
        return bytes(found)


class CachedKeyStore:
    """A `KeyStore` that remembers live keys for `seconds`: every request looks its key up,
    and one lookup through the async engine costs ~0.9 ms of CPU (bench/key_store.py). A key
    revoked through this store is forgotten at once; one revoked by another process (the key
    CLI, another gateway replica) still works here for at most `seconds`. Unknown secrets are
    not remembered, so a guessed key costs a lookup each time, as before."""

    def __init__(self, inner: KeyStore, seconds: float, entries: int = 10_000) -> None:
        self._inner = inner
        self._seconds = seconds
        self._entries = entries
        self._live: OrderedDict[str, tuple[float, ApiKey]] = OrderedDict()
        # Bumped by every revocation: a lookup that read the database before one does not
        # cache what it read (it may be the key just revoked).
        self._revocations = 0

    async def create(self, name: str, plan: str) -> tuple[ApiKey, str]:
        return await self._inner.create(name, plan)

    async def lookup(self, secret: str) -> ApiKey | None:
        digest = _hash(secret)
        now = time.monotonic()
        cached = self._live.get(digest)
        if cached is not None and cached[0] > now:
            self._live.move_to_end(digest)
            return cached[1]
        revocations = self._revocations
        key = await self._inner.lookup(secret)
        if key is None:
            self._live.pop(digest, None)
        elif revocations == self._revocations:
            self._live[digest] = (now + self._seconds, key)
            if len(self._live) > self._entries:
                self._live.popitem(last=False)
        return key

    async def list(self) -> list[ApiKey]:
        return await self._inner.list()

    async def revoke(self, key_id: int) -> bool:
        self._revocations += 1
        for digest, (_, key) in list(self._live.items()):
            if key.id == key_id:
                del self._live[digest]
        revoked = await self._inner.revoke(key_id)
        self._revocations += 1
        return revoked

    async def url_signing_secret(self) -> bytes:
        return await self._inner.url_signing_secret()
