"""The stores and limits that several gateway processes share, on the real servers they share
them through (tests/servers.py): PostgreSQL (migrations, credits, keys, tasks, conversations), an S3 (moto:
stored results' bytes) and Redis (requests per minute, requests at once). Each server starts
once for this module; "processes" are separate engines or clients on one server."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import boto3
import pytest
import pytest_asyncio
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

import gateway.store.database
from gateway.ratelimit import RedisSlots, RequestRate
from gateway.store.blobs import S3Blobs
from gateway.store.conversations import SqlConversationStore, Turn
from gateway.store.credits import Hold, InsufficientCredits, SqlCreditStore
from gateway.store.database import open_database, sqlite_url
from gateway.store.keys import SqlKeyStore
from gateway.store.results import SqlResultStore, new_id
from gateway.store.tables import credit_holds
from gateway.store.tasks import RUNNING, SqlTaskStore
from tests.servers import postgres_server, redis_server, s3_server

# Server start-up (fixture setup) included: a test past this is stuck, not slow.
pytestmark = pytest.mark.timeout(60)


# --- PostgreSQL -------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with postgres_server(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest_asyncio.fixture
async def database_url(postgres_url: str) -> str:
    """A new, empty database on the module's server: each test starts from no schema."""
    name = f"test_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(f"CREATE DATABASE {name}")
    finally:
        await connection.close()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


async def _engines(url: str, count: int) -> list[AsyncEngine]:
    """`count` engines on `url`, as `count` gateway processes would have (the first migrates)."""
    first = await open_database(url)
    return [first, *[await open_database(url) for _ in range(count - 1)]]


async def _dispose(engines: list[AsyncEngine]) -> None:
    await asyncio.gather(*(engine.dispose() for engine in engines))


def _head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(Path(gateway.store.database.__file__).parent / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


async def test_processes_opening_a_new_postgres_database_at_once_migrate_it_once(database_url: str) -> None:
    engines = list(await asyncio.gather(open_database(database_url), open_database(database_url)))
    try:
        async with engines[1].connect() as connection:
            versions = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
            holds = (await connection.execute(select(func.count()).select_from(credit_holds))).scalar_one()
        assert versions == [_head_revision()] and holds == 0
    finally:
        await _dispose(engines)


async def test_holds_on_postgres_never_spend_more_than_the_balance(database_url: str) -> None:
    engines = await _engines(database_url, 3)
    credits = [SqlCreditStore(engine) for engine in engines]
    try:
        assert await credits[0].grant(1, 10, "test") == 10
        outcomes = await asyncio.gather(
            *(credits[n % 3].hold(1, 1, "/v1/tts/", 60) for n in range(20)), return_exceptions=True
        )
        held = [outcome for outcome in outcomes if isinstance(outcome, Hold)]
        refused = [outcome for outcome in outcomes if isinstance(outcome, InsufficientCredits)]
        assert len(held) == 10 and len(refused) == 10, outcomes
        assert {(error.required, error.available) for error in refused} == {(1, 0)}
        assert sorted(hold.balance for hold in held) == list(range(10))
        assert await credits[1].balance(1) == 0

        assert await credits[2].settle(held[0].id, 1, "req-1") == 1
        await asyncio.gather(*(credits[n % 3].release(hold.id) for n, hold in enumerate(held[1:])))
        assert await credits[0].balance(1) == 9
        ledger = await credits[1].ledger(1)
        assert [(entry.kind, entry.amount) for entry in ledger] == [("charge", 1), ("grant", 10)]
        assert (ledger[0].route, ledger[0].reference) == ("/v1/tts/", "req-1")
        async with engines[0].connect() as connection:
            assert (await connection.execute(select(func.count()).select_from(credit_holds))).scalar_one() == 0
    finally:
        await _dispose(engines)


async def test_keys_on_postgres_are_created_looked_up_and_revoked(database_url: str) -> None:
    engines = await _engines(database_url, 2)
    mine, other = SqlKeyStore(engines[0]), SqlKeyStore(engines[1])
    try:
        key, secret = await mine.create("app", "pro")
        assert await other.lookup(secret) == key and await other.lookup(secret + "x") is None
        assert await other.revoke(key.id) and not await mine.revoke(key.id)
        assert await mine.lookup(secret) is None
        # Two processes making the URL-signing secret at once end up with one.
        first, second = await asyncio.gather(mine.url_signing_secret(), other.url_signing_secret())
        assert len(first) == 32 and first == second
    finally:
        await _dispose(engines)


async def test_one_of_two_workers_on_postgres_claims_a_task(database_url: str) -> None:
    engines = await _engines(database_url, 2)
    workers = [SqlTaskStore(engine) for engine in engines]
    try:
        for n in range(5):
            task = await workers[0].create(f"task-{n}", 1, "tts", "/v1/tts/", {"text": "hi"}, None, None, None)
            claims = await asyncio.gather(workers[0].claim(task.id, 30), workers[1].claim(task.id, 30))
            # The winner gets its run number (1), the other nothing.
            assert sorted(claims, key=str) == [1, None]
            # Run 1 owns it: its lease renews; a run of another number cannot end it.
            assert await workers[1].renew(task.id, 1, 30)
            assert await workers[0].finish(task.id, 2, "success", 0, None) is None
            claimed = await workers[1].get(task.id)
            assert claimed is not None and claimed.status == RUNNING
    finally:
        await _dispose(engines)


async def test_conversations_on_postgres_append_in_order_for_their_key_only(database_url: str) -> None:
    engines = await _engines(database_url, 2)
    first, second = SqlConversationStore(engines[0], 3600), SqlConversationStore(engines[1], 3600)
    try:
        conversation_id = await first.save(None, 1, [Turn("user", "hi", "en"), Turn("assistant", "hello", "en")])
        turns = [[Turn("user", f"q{n}", "en"), Turn("assistant", f"a{n}", "en")] for n in range(4)]
        await asyncio.gather(*((first, second)[n % 2].save(conversation_id, 1, pair) for n, pair in enumerate(turns)))
        history = await second.history(conversation_id, 1, 3)
        assert history is not None and [turn.role for turn in history] == ["assistant", "user", "assistant"]
        assert len(await first.history(conversation_id, 1, 100) or []) == 10
        assert await second.history(conversation_id, 2, 100) is None
    finally:
        await _dispose(engines)


# --- S3 ---------------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def s3_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with s3_server(tmp_path_factory.mktemp("s3")) as url:
        yield url


@pytest_asyncio.fixture
async def bucket(s3_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket on the S3, and the (any) credentials and region boto3 wants."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
    name = f"test-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_url)
    await asyncio.to_thread(client.create_bucket, Bucket=name)
    client.close()
    return name


async def _read(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_s3_blobs_read_back_what_was_put_until_deleted(bucket: str, s3_url: str) -> None:
    blobs = S3Blobs(bucket, s3_url)
    data = os.urandom(3 * 1024 * 1024)
    await blobs.put("task_blob", io.BytesIO(data))
    assert await _read(blobs.read("task_blob")) == data
    await blobs.delete("task_blob")
    with pytest.raises(FileNotFoundError):
        await _read(blobs.read("task_blob"))


async def test_results_in_s3_are_found_by_their_owner_only(bucket: str, s3_url: str, tmp_path: Path) -> None:
    engine = await open_database(sqlite_url(tmp_path / "db"))
    results = SqlResultStore(engine, S3Blobs(bucket, s3_url), 3600)
    try:
        result_id = new_id("task")
        stored = await results.put(result_id, 7, "audio/mpeg", "speech.mp3", io.BytesIO(b"ID3 audio"))
        assert stored.size == 9 and stored.expires_at > time.time()
        assert await results.find(result_id, 7) == stored
        assert await results.find(result_id, 8) is None
        assert await _read(results.read(stored)) == b"ID3 audio"
    finally:
        await engine.dispose()


# --- Redis ------------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def redis_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def _key_id() -> int:
    """A key no other test on the module's Redis has used."""
    return secrets.randbelow(10**9) + 1


async def test_processes_on_one_redis_share_a_key_s_requests_per_minute(redis_url: str) -> None:
    first, second = RequestRate(redis_url), RequestRate(redis_url)
    key = _key_id()
    try:
        allowed = [await first.hit(key, 5) for _ in range(3)] + [await second.hit(key, 5) for _ in range(2)]
        assert [(window.allowed, window.remaining) for window in allowed] == [(True, n) for n in (4, 3, 2, 1, 0)]
        for rate in (first, second):
            now = time.time()
            refused = await rate.hit(key, 5)
            assert not refused.allowed and refused.remaining == 0 and refused.limit == 5
            assert now < refused.reset <= now + 61  # the first hit's 60 s, rounded up
    finally:
        # Its Redis connections: left open, they warn (an error here) once collected.
        await first.close()
        await second.close()


async def test_processes_on_one_redis_share_a_key_s_requests_at_once(redis_url: str) -> None:
    first, second = RedisSlots(redis_url), RedisSlots(redis_url)
    key = _key_id()
    try:
        assert await first.acquire(key, 2, "a") and await second.acquire(key, 2, "b")
        assert not await first.acquire(key, 2, "c") and not await second.acquire(key, 2, "c")
        await first.release(key, "a")
        assert await second.acquire(key, 2, "c")
        assert not await first.acquire(key, 2, "d")
    finally:
        await first.close()
        await second.close()
