"""Opening every store of the gateway on one database (and one blob store), from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.settings import GatewaySettings
from gateway.store.audit import CloneAudit, SqlCloneAudit
from gateway.store.blobs import BlobStore, FolderBlobs, S3Blobs
from gateway.store.conversations import ConversationStore, SqlConversationStore
from gateway.store.credits import CreditStore, SqlCreditStore
from gateway.store.database import open_database, reachable, sqlite_url
from gateway.store.keys import CachedKeyStore, KeyStore, SqlKeyStore
from gateway.store.results import ResultStore, SqlResultStore
from gateway.store.tasks import SqlTaskStore, TaskStore
from gateway.store.webhook_secrets import SqlWebhookSecrets, WebhookSecrets


@dataclass(frozen=True)
class Stores:
    engine: AsyncEngine
    keys: KeyStore
    audit: CloneAudit
    credits: CreditStore
    results: ResultStore
    tasks: TaskStore
    webhook_secrets: WebhookSecrets
    conversations: ConversationStore

    async def reachable(self) -> bool:
        return await reachable(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()


async def open_stores(settings: GatewaySettings) -> Stores:
    engine = await open_database(settings.database_url or sqlite_url(settings.database_path))
    keys: KeyStore = SqlKeyStore(engine)
    if settings.key_cache_seconds > 0:
        keys = CachedKeyStore(keys, settings.key_cache_seconds)
    blobs: BlobStore = (
        S3Blobs(settings.s3_bucket, settings.s3_endpoint_url)
        if settings.s3_bucket
        else FolderBlobs(settings.results_dir or settings.database_path.parent / "results")
    )
    return Stores(
        engine,
        keys,
        SqlCloneAudit(engine),
        SqlCreditStore(engine),
        SqlResultStore(engine, blobs, settings.result_seconds),
        SqlTaskStore(engine),
        SqlWebhookSecrets(engine),
        SqlConversationStore(engine, settings.conversation_seconds),
    )
