"""The gateway's stores on a real SQLite file: keys (hashed, revocable, cached), the shared
URL-signing secret, the clone audit, and a database made by an earlier release."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

from gateway.settings import GatewaySettings
from gateway.store.audit import CloneRecord
from gateway.store.keys import CachedKeyStore, SqlKeyStore
from gateway.store.stores import open_stores

# What the release before the async stores created (gateway/keystore.py then).
OLD_SCHEMA = """
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    name TEXT NOT NULL,
    plan TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
)
"""


def _settings(path: Path, **options: object) -> GatewaySettings:
    return GatewaySettings(database_path=path, **options)


async def test_keys_are_stored_hashed_and_revocable(tmp_path: Path) -> None:
    stores = await open_stores(_settings(tmp_path / "db", key_cache_seconds=0))
    try:
        key, secret = await stores.keys.create("app", "enterprise")
        assert (await stores.keys.lookup(secret)) == key and key.plan == "enterprise"
        assert await stores.keys.lookup(secret + "x") is None
        assert [k.id for k in await stores.keys.list()] == [key.id]
        assert await stores.keys.revoke(key.id) and not await stores.keys.revoke(key.id)
        assert await stores.keys.lookup(secret) is None
    finally:
        await stores.close()
    stored = sqlite3.connect(tmp_path / "db").execute("SELECT key_hash, prefix FROM api_keys").fetchone()
    assert stored == (hashlib.sha256(secret.encode()).hexdigest(), secret[:12])


async def test_a_cached_key_is_forgotten_when_revoked_through_the_cache(tmp_path: Path) -> None:
    stores = await open_stores(_settings(tmp_path / "db", key_cache_seconds=3600))
    other = SqlKeyStore(stores.engine)  # another process's view of the same database
    try:
        assert isinstance(stores.keys, CachedKeyStore)
        first, first_secret = await stores.keys.create("a", "pro")
        second, second_secret = await stores.keys.create("b", "pro")
        assert await stores.keys.lookup(first_secret) == first
        assert await stores.keys.lookup(second_secret) == second
        await stores.keys.revoke(first.id)
        assert await stores.keys.lookup(first_secret) is None
        # Revoked elsewhere: remembered here until the cache's time is up (documented).
        await other.revoke(second.id)
        assert await stores.keys.lookup(second_secret) == second
        assert await other.lookup(second_secret) is None
    finally:
        await stores.close()


async def test_every_process_on_one_database_signs_with_one_secret(tmp_path: Path) -> None:
    first, second = await open_stores(_settings(tmp_path / "db")), await open_stores(_settings(tmp_path / "db"))
    try:
        secret = await first.keys.url_signing_secret()
        assert len(secret) == 32 and await second.keys.url_signing_secret() == secret
    finally:
        await first.close()
        await second.close()


async def test_clones_are_audited_per_key(tmp_path: Path) -> None:
    stores = await open_stores(_settings(tmp_path / "db"))
    try:
        record = CloneRecord(7, "ab" * 32, 1000, "world-adapt", "joe", 12, 0.5)
        await stores.audit.record(record)
        [stored] = await stores.audit.records(7)
        assert stored.created_at and stored == CloneRecord(**{**record.__dict__, "created_at": stored.created_at})
        assert await stores.audit.records(8) == []
    finally:
        await stores.close()


async def test_a_database_made_by_an_earlier_release_keeps_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    secret = "sk-tts-" + "a" * 43
    with sqlite3.connect(path) as old:
        old.execute(OLD_SCHEMA)
        old.execute(
            "INSERT INTO api_keys (key_hash, prefix, name, plan, created_at) VALUES (?, ?, 'old', 'pro', 'then')",
            (hashlib.sha256(secret.encode()).hexdigest(), secret[:12]),
        )
    stores = await open_stores(_settings(path))
    try:
        key = await stores.keys.lookup(secret)
        assert key is not None and key.name == "old"
        await stores.audit.record(CloneRecord(key.id, "00" * 32, 1, "m", "v", 1, 0.1))
    finally:
        await stores.close()


def test_processes_opening_a_new_database_at_once_all_start(tmp_path: Path) -> None:
    """`make run` starts the gateway and its first-run helper together on a fresh var/."""
    database = tmp_path / "fresh.db"
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from gateway.settings import GatewaySettings\n"
        "from gateway.store.stores import open_stores\n"
        "async def main():\n"
        "    stores = await open_stores(GatewaySettings(database_path=Path(sys.argv[1])))\n"
        "    print((await stores.keys.url_signing_secret()).hex())\n"
        "    await stores.close()\n"
        "asyncio.run(main())\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(database)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    results = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0] * 6, [err.decode()[-300:] for _, err in results]
    assert len({out for out, _ in results}) == 1  # one signing secret for all


async def test_the_migrations_make_exactly_the_tables_the_code_uses(tmp_path: Path) -> None:
    """Alembic's schema (gateway/store/migrations/) and store/tables.py agree: a new table or
    column needs a migration, or this fails."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from gateway.store.database import open_database, sqlite_url
    from gateway.store.tables import metadata

    engine = await open_database(sqlite_url(tmp_path / "db"))
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
            head = (await connection.exec_driver_sql("SELECT version_num FROM alembic_version")).scalars().all()
    finally:
        await engine.dispose()
    assert differences == [] and head == ["0003"]


async def test_credit_holds_never_overspend_and_settle_exactly(tmp_path: Path) -> None:
    from gateway.store.credits import InsufficientCredits

    stores = await open_stores(_settings(tmp_path / "db"))
    try:
        credits = stores.credits
        assert await credits.grant(7, 10, "test") == 10
        holds = []
        for _ in range(3):
            holds.append(await credits.hold(7, 3, "/v1/tts/", 60))
        assert [hold.balance for hold in holds] == [7, 4, 1]
        try:
            await credits.hold(7, 2, "/v1/tts/", 60)
            raise AssertionError("held more than the balance")
        except InsufficientCredits as short:
            assert (short.required, short.available) == (2, 1)
        assert await credits.settle(holds[0].id, 2, "r1") == 2  # 1 of 3 back
        await credits.release(holds[1].id)  # all 3 back
        assert await credits.settle(holds[0].id, 2, "again") == 0  # settled once only
        # More than held (audio longer than its packets said): the rest while it lasts.
        assert await credits.settle(holds[2].id, 20, "r3") == 3 + 5
        assert await credits.balance(7) == 0
        expired = await credits.hold(7, 0, "/v1/stt/", -1)
        assert await credits.release_expired() == 1 and await credits.settle(expired.id, 0, "x") == 0
        entries = [(entry.kind, entry.amount, entry.reference) for entry in await credits.ledger(7)]
        assert entries == [("charge", 8, "r3"), ("charge", 2, "r1"), ("grant", 10, "test")]
    finally:
        await stores.close()
