"""Stored results: files only their owner's key can read, for 24 hours.

Task results and uploads waiting for their task (and, later, voice chat's and speech
translation's `audio_url`). Ids are `<kind>_` and 32 random url-safe characters (192 bits:
unguessable); a name that does not match that shape is never looked up, so no id reaches the
blob store that could name a path. Another key's result, an expired one and an unknown id
all answer the same: not found.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Protocol

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.blobs import BlobStore
from gateway.store.finishing import finishing
from gateway.store.tables import results

_ID = re.compile(r"^[a-z]{2,16}_[A-Za-z0-9_-]{32}$")


def new_id(kind: str) -> str:
    return f"{kind}_{secrets.token_urlsafe(24)}"


def valid_id(result_id: str) -> bool:
    return bool(_ID.fullmatch(result_id))


@dataclass(frozen=True)
class StoredResult:
    id: str
    key_id: int
    content_type: str
    filename: str
    size: int
    expires_at: float


class ResultStore(Protocol):
    async def put(
        self, result_id: str, key_id: int, content_type: str, filename: str, source: IO[bytes]
    ) -> StoredResult: ...

    async def find(self, result_id: str, key_id: int) -> StoredResult | None:
        """The key's live result, or None (unknown, another key's, expired)."""

    def read(self, result: StoredResult) -> AsyncIterator[bytes]: ...

    async def delete(self, result_id: str) -> None: ...

    async def purge(self) -> int:
        """Deletes expired results; how many."""


@finishing
class SqlResultStore:
    """Metadata in the gateway's database, bytes in a `BlobStore`."""

    def __init__(self, engine: AsyncEngine, blobs: BlobStore, seconds: float) -> None:
        self._engine = engine
        self._blobs = blobs
        self._seconds = seconds

    async def put(
        self, result_id: str, key_id: int, content_type: str, filename: str, source: IO[bytes]
    ) -> StoredResult:
        if not valid_id(result_id):
            raise ValueError(f"not a result id: {result_id!r}")
        size = source.seek(0, 2)
        # The bytes first, then the row that makes them visible: never a row without its file.
        await self._blobs.put(result_id, source)
        result = StoredResult(result_id, key_id, content_type, filename, size, time.time() + self._seconds)
        async with self._engine.begin() as connection:
            await connection.execute(delete(results).where(results.c.id == result_id))
            await connection.execute(
                insert(results).values(
                    id=result_id,
                    key_id=key_id,
                    content_type=content_type,
                    filename=filename,
                    size=size,
                    created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    expires_at=result.expires_at,
                )
            )
        return result

    async def find(self, result_id: str, key_id: int) -> StoredResult | None:
        if not valid_id(result_id):
            return None
        c = results.c
        query = select(c.id, c.key_id, c.content_type, c.filename, c.size, c.expires_at).where(
            c.id == result_id, c.key_id == key_id, c.expires_at > time.time()
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return StoredResult(*row) if row else None

    def read(self, result: StoredResult) -> AsyncIterator[bytes]:
        return self._blobs.read(result.id)

    async def delete(self, result_id: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(delete(results).where(results.c.id == result_id))
        await self._blobs.delete(result_id)

    async def purge(self) -> int:
        query = select(results.c.id).where(results.c.expires_at <= time.time())
        async with self._engine.connect() as connection:
            expired = (await connection.execute(query)).scalars().all()
        for result_id in expired:
            await self.delete(result_id)
        return len(expired)
