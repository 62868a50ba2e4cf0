"""Voice chat's conversations (`POST /v1/voice-chat/`): each key's turns, kept for a while.

A conversation is a row in `conversations` (its key and expiry) and its messages, one row
each in `conversation_messages`. Each save pushes the expiry to now + the store's lifetime, so
a conversation lives as long after its last turn. Ids are `conv_` and 32 random url-safe
characters (results.new_id: unguessable); a name of another shape is never looked up. An
unknown id, an expired conversation and another key's all answer the same, None (the router's
404), so a caller learns nothing about ids that are not its own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.finishing import finishing
from gateway.store.results import new_id, valid_id
from gateway.store.tables import conversation_messages, conversations

_KIND = "conv"
ROLES = frozenset({"user", "assistant"})
# Expired ids deleted per statement by purge: well under SQLite's and asyncpg's bound on
# parameters in one statement.
_PURGE_CHUNK = 500


@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant"
    content: str
    language: str  # ISO 639-1, "" when unknown


class ConversationStore(Protocol):
    async def history(self, conversation_id: str, key_id: int, limit: int) -> list[Turn] | None:
        """The newest `limit` messages, oldest first, of the key's live conversation; None when
        it is unknown, expired or another key's."""

    async def save(self, conversation_id: str | None, key_id: int, turns: Sequence[Turn]) -> str:
        """Appends `turns` (in order) to the key's conversation, or starts one when
        `conversation_id` is None; returns its id and pushes its expiry to now + the store's
        lifetime. Raises LookupError when the given conversation is not the key's live one
        (another request may have expired it in between)."""

    async def purge(self) -> int:
        """Deletes expired conversations and their messages; how many conversations."""


def _is_conversation_id(conversation_id: str) -> bool:
    return conversation_id.startswith(f"{_KIND}_") and valid_id(conversation_id)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@finishing
class SqlConversationStore:
    """Conversations in the gateway's database.

    Messages are ordered by their autoincrement id: a message saved later has a larger id, even
    two saved by one call (inserted one by one, in order), so no clock ties decide the order.
    """

    def __init__(self, engine: AsyncEngine, lifetime_seconds: float, max_messages: int = 200) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self._engine = engine
        self._lifetime = lifetime_seconds
        # The chat service only reads the newest messages (its prompt's history is a few turns),
        # so older ones are deleted on save: one conversation's rows stay bounded however long
        # it runs.
        self._max_messages = max_messages

    async def history(self, conversation_id: str, key_id: int, limit: int) -> list[Turn] | None:
        if not _is_conversation_id(conversation_id):
            return None
        c, m = conversations.c, conversation_messages.c
        live = select(c.id).where(c.id == conversation_id, c.key_id == key_id, c.expires_at > time.time())
        newest = (
            select(m.role, m.content, m.language)
            .where(m.conversation_id == conversation_id)
            .order_by(m.id.desc())
            .limit(max(limit, 0))
        )
        async with self._engine.connect() as connection:
            # The key and expiry are checked on the conversation's row: messages carry no key,
            # and are only read once that check passed.
            if (await connection.execute(live)).first() is None:
                return None
            rows = (await connection.execute(newest)).all() if limit > 0 else []
        return [Turn(role, content, language) for role, content, language in reversed(rows)]

    async def save(self, conversation_id: str | None, key_id: int, turns: Sequence[Turn]) -> str:
        for turn in turns:
            if turn.role not in ROLES:
                raise ValueError(f"not a conversation role: {turn.role!r}")
        expires_at = time.time() + self._lifetime
        c, m = conversations.c, conversation_messages.c
        async with self._engine.begin() as connection:
            if conversation_id is None:
                conversation_id = new_id(_KIND)
                await connection.execute(
                    insert(conversations).values(
                        id=conversation_id, key_id=key_id, created_at=_now_iso(), expires_at=expires_at
                    )
                )
            else:
                if not _is_conversation_id(conversation_id):
                    raise LookupError(conversation_id)
                # First statement of the transaction, and a write: it checks the key and expiry
                # and takes the conversation's row lock (PostgreSQL) or the database's write lock
                # (SQLite) at once. A concurrent save to this conversation waits here until this
                # one commits, then appends after it (nothing is read and written back, so
                # nothing is lost); a purge that deleted the row first makes this match nothing.
                pushed = await connection.execute(
                    update(conversations)
                    .where(c.id == conversation_id, c.key_id == key_id, c.expires_at > time.time())
                    .values(expires_at=expires_at)
                )
                if pushed.rowcount != 1:
                    raise LookupError(conversation_id)
            created_at = _now_iso()
            # One insert per turn, in order: the ids (the order history reads) follow `turns`.
            for turn in turns:
                await connection.execute(
                    insert(conversation_messages).values(
                        conversation_id=conversation_id,
                        role=turn.role,
                        content=turn.content,
                        language=turn.language,
                        created_at=created_at,
                    )
                )
            # The newest message past the bound, if any; it and every older one go.
            oldest_dropped = (
                await connection.execute(
                    select(m.id)
                    .where(m.conversation_id == conversation_id)
                    .order_by(m.id.desc())
                    .offset(self._max_messages)
                    .limit(1)
                )
            ).scalar_one_or_none()
            if oldest_dropped is not None:
                await connection.execute(
                    delete(conversation_messages).where(m.conversation_id == conversation_id, m.id <= oldest_dropped)
                )
        return conversation_id

    async def purge(self) -> int:
        c, m = conversations.c, conversation_messages.c
        async with self._engine.begin() as connection:
            # The conversations first (RETURNING their ids), then their messages, in one
            # transaction: a save that pushed a conversation's expiry before this delete keeps
            # it whole, and one after finds no row (LookupError) instead of appending to
            # messages about to be deleted.
            expired = (
                (await connection.execute(delete(conversations).where(c.expires_at <= time.time()).returning(c.id)))
                .scalars()
                .all()
            )
            for start in range(0, len(expired), _PURGE_CHUNK):
                chunk = expired[start : start + _PURGE_CHUNK]
                await connection.execute(delete(conversation_messages).where(m.conversation_id.in_(chunk)))
        return len(expired)
