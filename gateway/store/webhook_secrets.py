"""Each key's webhook signing secret (Standard Webhooks: `whsec_` and base64 of 32 random
bytes). Shown once, when it is made (`python -m gateway.keys webhook-secret ID`); the worker
reads it to sign. Made on first use for a key that never asked, so every webhook is signed."""

from __future__ import annotations

import base64
import contextlib
import secrets
from typing import Protocol

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.finishing import finishing
from gateway.store.tables import webhook_secrets


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookSecrets(Protocol):
    async def secret(self, key_id: int) -> str:
        """The key's secret, made if it has none."""

    async def rotate(self, key_id: int) -> str:
        """A new secret for the key (the old one stops verifying)."""


@finishing
class SqlWebhookSecrets:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def secret(self, key_id: int) -> str:
        query = select(webhook_secrets.c.secret).where(webhook_secrets.c.key_id == key_id)
        async with self._engine.connect() as connection:
            found = (await connection.execute(query)).scalar_one_or_none()
        if found is None:
            # Two workers making one at once: the second insert conflicts and reads the first's.
            with contextlib.suppress(IntegrityError):
                async with self._engine.begin() as connection:
                    await connection.execute(insert(webhook_secrets).values(key_id=key_id, secret=_new_secret()))
            async with self._engine.connect() as connection:
                found = (await connection.execute(query)).scalar_one()
        return str(found)

    async def rotate(self, key_id: int) -> str:
        secret = _new_secret()
        async with self._engine.begin() as connection:
            await connection.execute(delete(webhook_secrets).where(webhook_secrets.c.key_id == key_id))
            await connection.execute(insert(webhook_secrets).values(key_id=key_id, secret=secret))
        return secret
