"""The gateway's database: one SQLAlchemy async engine, its tables created on open.

`sqlite+aiosqlite:///var/speechmesh.db` by default (settings.database_path), in WAL mode so
several gateway processes share the file; any SQLAlchemy async URL otherwise
(`postgresql+asyncpg://...`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.schema import CreateTable

from gateway.store.tables import metadata

# How long a writer waits for another process's transaction on the same SQLite file.
_SQLITE_BUSY_SECONDS = 15


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def open_database(url: str) -> AsyncEngine:
    """The engine for `url`, with the gateway's tables in place."""
    if url.startswith("sqlite"):
        database = url.split(":///", 1)[1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": _SQLITE_BUSY_SECONDS})

        @event.listens_for(engine.sync_engine, "connect")
        def _wal(connection: Any, _: Any) -> None:
            connection.execute("PRAGMA journal_mode=WAL")

    else:
        engine = create_async_engine(url, pool_pre_ping=True)
    # IF NOT EXISTS, not create_all's check-then-create: processes opening a new database at
    # once (make run's gateway and first-run helper, replicas on PostgreSQL) would race.
    async with engine.begin() as connection:
        for table in metadata.sorted_tables:
            await connection.execute(CreateTable(table, if_not_exists=True))
    return engine


async def reachable(engine: AsyncEngine) -> bool:
    """Whether the database answers a query now."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any driver's error means the same here: not reachable
        return False
    return True
