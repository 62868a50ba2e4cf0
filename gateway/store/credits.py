"""Credits: a balance per key, a ledger of every grant and charge, and holds.

A request reserves what it will cost before any work (`hold`: the balance goes down at once,
in one conditional UPDATE, so concurrent requests of one key — on any number of gateway
processes sharing the database — can never spend more than the balance), then `settle`s the
hold into a charge for what it really used (the rest goes back) or `release`s it whole when
it failed. A process that dies holding credits leaves a hold with an expiry; `release_expired`
returns it. Tasks hold without expiry: the task store keeps and settles their holds in the
same transactions as the task's own rows (`keep_hold`, `settle_hold`, `release_hold`).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Update, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store.finishing import finishing, own_cancellation
from gateway.store.tables import credit_balances, credit_holds, credit_ledger


@dataclass(frozen=True)
class Hold:
    id: str
    key_id: int
    amount: int
    balance: int  # what the key had left once this was held


@dataclass(frozen=True)
class LedgerEntry:
    created_at: str
    kind: str
    amount: int
    route: str
    reference: str


class InsufficientCredits(Exception):
    def __init__(self, required: int, available: int) -> None:
        super().__init__(f"{required} credits required, {available} available")
        self.required = required
        self.available = available


class CreditStore(Protocol):
    async def balance(self, key_id: int) -> int: ...

    async def grant(self, key_id: int, amount: int, note: str) -> int:
        """Adds `amount` credits; the new balance."""

    async def hold(self, key_id: int, amount: int, route: str, expires_in: float | None) -> Hold:
        """Takes `amount` off the balance now, or raises InsufficientCredits."""

    async def settle(self, hold_id: str, charge: int, reference: str) -> int:
        """Charges `charge` for the hold (any more than it held is taken while the balance
        allows), returns the rest; the credits charged (0 if the hold is gone)."""

    async def release(self, hold_id: str) -> None:
        """Returns the whole hold to the balance (nothing if it is gone)."""

    async def release_expired(self) -> int:
        """Releases the holds of processes that died holding them; how many."""

    async def ledger(self, key_id: int, limit: int = 100) -> list[LedgerEntry]: ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@finishing
class SqlCreditStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # Holds being given back for callers who left while they were taken.
        self._returns: set[asyncio.Task[None]] = set()

    async def balance(self, key_id: int) -> int:
        async with self._engine.connect() as connection:
            return await _balance(connection, key_id)

    async def grant(self, key_id: int, amount: int, note: str) -> int:
        if amount <= 0:
            raise ValueError("a grant adds credits: amount must be positive")
        async with self._engine.begin() as connection:
            await _credit(connection, key_id, amount)
            await _record(connection, key_id, "grant", amount, "", note)
            return await _balance(connection, key_id)

    @own_cancellation
    async def hold(self, key_id: int, amount: int, route: str, expires_in: float | None) -> Hold:
        taking = asyncio.ensure_future(self._hold(key_id, amount, route, expires_in))
        try:
            return await asyncio.shield(taking)
        except asyncio.CancelledError:
            # The caller left while its hold was being taken: nobody will settle it.
            taking.add_done_callback(self._give_back)
            raise

    def _give_back(self, taking: asyncio.Future[Hold]) -> None:
        if taking.cancelled() or taking.exception() is not None:
            return
        returning = asyncio.ensure_future(self.release(taking.result().id))
        self._returns.add(returning)
        returning.add_done_callback(self._returns.discard)

    async def _hold(self, key_id: int, amount: int, route: str, expires_in: float | None) -> Hold:
        hold_id = secrets.token_hex(16)
        async with self._engine.begin() as connection:
            left = (
                await connection.execute(
                    update(credit_balances)
                    .where(credit_balances.c.key_id == key_id, credit_balances.c.balance >= amount)
                    .values(balance=credit_balances.c.balance - amount)
                    .returning(credit_balances.c.balance)
                )
            ).scalar_one_or_none()
            if left is None:
                raise InsufficientCredits(amount, await _balance(connection, key_id))
            await connection.execute(
                insert(credit_holds).values(
                    id=hold_id,
                    key_id=key_id,
                    amount=amount,
                    route=route,
                    created_at=_now(),
                    expires_at=None if expires_in is None else time.time() + expires_in,
                )
            )
        return Hold(hold_id, key_id, amount, int(left))

    async def settle(self, hold_id: str, charge: int, reference: str) -> int:
        async with self._engine.begin() as connection:
            return await settle_hold(connection, hold_id, charge, reference)

    async def release(self, hold_id: str) -> None:
        async with self._engine.begin() as connection:
            await release_hold(connection, hold_id)

    async def release_expired(self) -> int:
        query = select(credit_holds.c.id).where(credit_holds.c.expires_at < time.time())
        async with self._engine.connect() as connection:
            expired = (await connection.execute(query)).scalars().all()
        for hold_id in expired:
            await self.release(hold_id)
        return len(expired)

    async def ledger(self, key_id: int, limit: int = 100) -> list[LedgerEntry]:
        c = credit_ledger.c
        query = (
            select(c.created_at, c.kind, c.amount, c.route, c.reference)
            .where(c.key_id == key_id)
            .order_by(c.id.desc())
            .limit(limit)
        )
        async with self._engine.connect() as connection:
            return [LedgerEntry(*row) for row in (await connection.execute(query)).all()]


async def settle_hold(connection: AsyncConnection, hold_id: str, charge: int, reference: str) -> int:
    """In the caller's transaction: the hold charged `charge` (see `CreditStore.settle`); the
    credits charged, 0 when the hold is gone (settled or released already)."""
    taken = await _take_hold(connection, hold_id)
    if taken is None:
        return 0
    key_id, held, route = taken
    if charge > held:
        # Audio longer than its packets said: the rest while the balance has it. The row is
        # locked first (PostgreSQL: FOR UPDATE; SQLite holds the write lock since the
        # DELETE), so a concurrent hold cannot spend it between the read and the write.
        query = select(credit_balances.c.balance).where(credit_balances.c.key_id == key_id).with_for_update()
        available = int((await connection.execute(query)).scalar_one_or_none() or 0)
        extra = min(charge - held, available)
        await _credit(connection, key_id, -extra)
        charge = held + extra
    elif held > charge:
        await _credit(connection, key_id, held - charge)
    if charge:
        await _record(connection, key_id, "charge", charge, route, reference)
    return charge


async def release_hold(connection: AsyncConnection, hold_id: str) -> None:
    """In the caller's transaction: the whole hold back to the balance (nothing if it is gone)."""
    taken = await _take_hold(connection, hold_id)
    if taken is not None:
        await _credit(connection, taken[0], taken[1])


def keep_hold(hold_id: str) -> Update:
    """The statement that makes a hold a task's: it no longer expires."""
    return update(credit_holds).where(credit_holds.c.id == hold_id).values(expires_at=None)


async def _balance(connection: AsyncConnection, key_id: int) -> int:
    query = select(credit_balances.c.balance).where(credit_balances.c.key_id == key_id)
    return int((await connection.execute(query)).scalar_one_or_none() or 0)


async def _credit(connection: AsyncConnection, key_id: int, amount: int) -> None:
    """Adds `amount` (negative: takes it) to the key's balance, making its row on first use."""
    changed = await connection.execute(
        update(credit_balances)
        .where(credit_balances.c.key_id == key_id)
        .values(balance=credit_balances.c.balance + amount)
    )
    if changed.rowcount == 0:
        await connection.execute(insert(credit_balances).values(key_id=key_id, balance=amount))


async def _take_hold(connection: AsyncConnection, hold_id: str) -> tuple[int, int, str] | None:
    """Deletes the hold and returns (key, amount, route); None when another settled it first."""
    row = (
        await connection.execute(
            delete(credit_holds)
            .where(credit_holds.c.id == hold_id)
            .returning(credit_holds.c.key_id, credit_holds.c.amount, credit_holds.c.route)
        )
    ).first()
    return None if row is None else (int(row[0]), int(row[1]), str(row[2]))


async def _record(connection: AsyncConnection, key_id: int, kind: str, amount: int, route: str, ref: str) -> None:
    await connection.execute(
        insert(credit_ledger).values(
            key_id=key_id, created_at=_now(), kind=kind, amount=amount, route=route, reference=ref
        )
    )
