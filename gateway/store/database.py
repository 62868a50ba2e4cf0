"""The gateway's database: one SQLAlchemy async engine, migrated to the newest schema on open.

`sqlite+aiosqlite:///var/speechmesh.db` by default (settings.database_path), in WAL mode so
several gateway processes share the file; any SQLAlchemy async URL otherwise
(`postgresql+asyncpg://...`). The schema is Alembic's (`gateway/store/migrations/`):
processes that open one database at once (make run's gateway, worker and first-run helper;
replicas on PostgreSQL) take turns under a lock, so each migration runs once.
"""

from __future__ import annotations

import asyncio
import fcntl
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number: the PostgreSQL advisory lock that serialises migrations.
_MIGRATION_LOCK = 0x5EEC4

# How long a writer waits for another process's transaction on the same SQLite file.
_SQLITE_BUSY_SECONDS = 15


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def open_database(url: str) -> AsyncEngine:
    """The engine for `url`, with the gateway's tables in place."""
    database = url.split(":///", 1)[1] if url.startswith("sqlite") else ""
    if url.startswith("sqlite"):
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": _SQLITE_BUSY_SECONDS})

        @event.listens_for(engine.sync_engine, "connect")
        def _wal(connection: Any, _: Any) -> None:
            connection.execute("PRAGMA journal_mode=WAL")

    else:
        engine = create_async_engine(url, pool_pre_ping=True)
    if database and database != ":memory:":
        # SQLite: the processes share the file, so a lock file beside it.
        with open(f"{database}.migrate.lock", "a") as lock:
            # Off the event loop: another open in this process may hold it meanwhile.
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            await _migrate(engine)
    else:
        await _migrate(engine)
    return engine


async def _migrate(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Held to the end of this transaction, in which the migrations run.
            await connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK})
        await connection.run_sync(_upgrade)


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def reachable(engine: AsyncEngine) -> bool:
    """Whether the database answers a query now."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any driver's error means the same here: not reachable
        return False
    return True
