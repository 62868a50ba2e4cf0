"""The clone audit log: who cloned which voice when.

A cloned voice can impersonate someone, so every clone is recorded: the API key, the
time, a SHA-256 of the reference recording (never the recording itself), the model,
the base voice and the measured similarity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.finishing import finishing
from gateway.store.tables import clone_audit


@dataclass(frozen=True)
class CloneRecord:
    key_id: int
    reference_sha256: str
    reference_bytes: int
    model: str
    base_voice: str
    characters: int
    similarity: float
    created_at: str = ""


class CloneAudit(Protocol):
    async def record(self, record: CloneRecord) -> None: ...

    async def records(self, key_id: int) -> list[CloneRecord]: ...


@finishing
class SqlCloneAudit:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, record: CloneRecord) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                insert(clone_audit).values(
                    key_id=record.key_id,
                    created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    reference_sha256=record.reference_sha256,
                    reference_bytes=record.reference_bytes,
                    model=record.model,
                    base_voice=record.base_voice,
                    characters=record.characters,
                    similarity=record.similarity,
                )
            )

    async def records(self, key_id: int) -> list[CloneRecord]:
        c = clone_audit.c
        columns = (c.key_id, c.reference_sha256, c.reference_bytes, c.model, c.base_voice, c.characters)
        query = select(*columns, c.similarity, c.created_at).where(c.key_id == key_id).order_by(c.id)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [CloneRecord(*row) for row in rows]
