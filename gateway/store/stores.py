"""Opening every store of the gateway on one database, from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.settings import GatewaySettings
from gateway.store.audit import CloneAudit, SqlCloneAudit
from gateway.store.database import open_database, reachable, sqlite_url
from gateway.store.keys import CachedKeyStore, KeyStore, SqlKeyStore


@dataclass(frozen=True)
class Stores:
    engine: AsyncEngine
    keys: KeyStore
    audit: CloneAudit

    async def reachable(self) -> bool:
        return await reachable(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()


async def open_stores(settings: GatewaySettings) -> Stores:
    engine = await open_database(settings.database_url or sqlite_url(settings.database_path))
    keys: KeyStore = SqlKeyStore(engine)
    if settings.key_cache_seconds > 0:
        keys = CachedKeyStore(keys, settings.key_cache_seconds)
    return Stores(engine, keys, SqlCloneAudit(engine))
