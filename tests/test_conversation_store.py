"""Voice chat's conversation store on a real SQLite file, made by the gateway's migrations:
order, limits, expiry and purge, keys kept apart, concurrent appends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytest_asyncio
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

import gateway.store.conversations
from gateway.settings import GatewaySettings
from gateway.store.conversations import SqlConversationStore, Turn
from gateway.store.stores import open_stores
from gateway.store.tables import conversation_messages, conversations

HOUR = 3600.0


@pytest_asyncio.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    stores = await open_stores(GatewaySettings(database_path=tmp_path / "db"))
    try:
        yield stores.engine
    finally:
        await stores.close()


def _turns(*contents: str) -> list[Turn]:
    return [Turn("user" if n % 2 == 0 else "assistant", content, "en") for n, content in enumerate(contents)]


async def _count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())


async def test_open_stores_has_a_conversation_store_with_the_settings_lifetime(tmp_path: Path) -> None:
    stores = await open_stores(GatewaySettings(database_path=tmp_path / "db", conversation_seconds=5))
    try:
        before = time.time()
        conversation_id = await stores.conversations.save(None, 1, _turns("hi"))
        async with stores.engine.connect() as connection:
            expires_at = (await connection.execute(select(conversations.c.expires_at))).scalar_one()
        assert before + 5 <= expires_at <= time.time() + 5
        assert await stores.conversations.history(conversation_id, 1, 10) == _turns("hi")
    finally:
        await stores.close()


async def test_a_saved_conversation_reads_back_oldest_first_within_the_limit(engine: AsyncEngine) -> None:
    store = SqlConversationStore(engine, HOUR)
    conversation_id = await store.save(None, 7, _turns("one", "two"))
    assert conversation_id.startswith("conv_") and len(conversation_id) == len("conv_") + 32
    # Appends land after what was there, two in one call in their order.
    assert await store.save(conversation_id, 7, _turns("three", "four")) == conversation_id
    await store.save(conversation_id, 7, [Turn("user", "five", "")])
    history = await store.history(conversation_id, 7, 100)
    assert history is not None
    assert [turn.content for turn in history] == ["one", "two", "three", "four", "five"]
    assert [turn.role for turn in history] == ["user", "assistant", "user", "assistant", "user"]
    assert history[-1].language == "" and history[0].language == "en"
    assert await store.history(conversation_id, 7, 2) == [Turn("assistant", "four", "en"), Turn("user", "five", "")]
    assert await store.history(conversation_id, 7, 0) == []
    # A live conversation with nothing in it yet is not an unknown one.
    empty = await store.save(None, 7, [])
    assert await store.history(empty, 7, 10) == []


async def test_unknown_malformed_and_other_keys_conversations_are_not_found(engine: AsyncEngine) -> None:
    store = SqlConversationStore(engine, HOUR)
    conversation_id = await store.save(None, 7, _turns("mine"))
    assert await store.history(conversation_id, 8, 10) is None
    assert await store.history("conv_" + "A" * 32, 7, 10) is None
    for malformed in ("", "conv_short", "task_" + conversation_id[5:], "../" + conversation_id):
        assert await store.history(malformed, 7, 10) is None
        with pytest.raises(LookupError):
            await store.save(malformed, 7, _turns("x"))
    with pytest.raises(LookupError):
        await store.save(conversation_id, 8, _turns("not yours"))
    with pytest.raises(LookupError):
        await store.save("conv_" + "A" * 32, 7, _turns("nobody's"))
    # The refused saves left nothing behind.
    assert await store.history(conversation_id, 7, 10) == _turns("mine")
    assert await _count(engine, conversation_messages) == 1
    with pytest.raises(ValueError):
        await store.save(conversation_id, 7, [Turn("system", "no", "en")])


async def test_an_expired_conversation_is_gone_and_purged_with_its_messages(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqlConversationStore(engine, HOUR)
    old = await store.save(None, 7, _turns("a", "b"))
    kept = await store.save(None, 7, _turns("c"))
    # Saving again pushes the expiry on: `kept` lives an hour from this later save.
    later = time.time() + HOUR / 2
    monkeypatch.setattr(gateway.store.conversations, "time", SimpleNamespace(time=lambda: later))
    await store.save(kept, 7, _turns("d"))
    later += HOUR * 3 / 4  # past `old`'s hour, not `kept`'s
    assert await store.history(old, 7, 10) is None
    with pytest.raises(LookupError):
        await store.save(old, 7, _turns("too late"))
    assert await store.history(kept, 7, 10) == [Turn("user", "c", "en"), Turn("user", "d", "en")]
    assert await store.purge() == 1
    assert await store.purge() == 0
    assert await _count(engine, conversations) == 1 and await _count(engine, conversation_messages) == 2
    later += HOUR
    assert await store.purge() == 1
    assert await _count(engine, conversations) == 0 and await _count(engine, conversation_messages) == 0


async def test_concurrent_saves_to_one_conversation_all_land(engine: AsyncEngine) -> None:
    store = SqlConversationStore(engine, HOUR)
    conversation_id = await store.save(None, 7, _turns("start"))
    pairs = [[Turn("user", f"q{n}", "en"), Turn("assistant", f"a{n}", "en")] for n in range(6)]
    await asyncio.gather(*(store.save(conversation_id, 7, pair) for pair in pairs))
    history = await store.history(conversation_id, 7, 100)
    assert history is not None and len(history) == 13 and history[0].content == "start"
    # Each save's two turns stay together and in order, whichever save went first.
    for question, answer in zip(history[1::2], history[2::2], strict=True):
        assert (question.content[0], answer.content[0]) == ("q", "a") and question.content[1:] == answer.content[1:]
    assert sorted(turn.content for turn in history[1::2]) == [f"q{n}" for n in range(6)]


async def test_a_conversation_keeps_only_its_newest_messages(engine: AsyncEngine) -> None:
    store = SqlConversationStore(engine, HOUR, max_messages=5)
    conversation_id = await store.save(None, 7, _turns(*(f"m{n}" for n in range(4))))
    other = await store.save(None, 7, _turns(*(f"o{n}" for n in range(3))))
    await store.save(conversation_id, 7, _turns("m4", "m5", "m6"))
    history = await store.history(conversation_id, 7, 100)
    assert history is not None and [turn.content for turn in history] == ["m2", "m3", "m4", "m5", "m6"]
    # One call saving more than the bound keeps its newest.
    await store.save(conversation_id, 7, _turns(*(f"n{n}" for n in range(7))))
    history = await store.history(conversation_id, 7, 100)
    assert history is not None and [turn.content for turn in history] == ["n2", "n3", "n4", "n5", "n6"]
    # Another conversation's messages are not counted against it.
    assert await store.history(other, 7, 100) == _turns("o0", "o1", "o2")
    assert await _count(engine, conversation_messages) == 5 + 3
