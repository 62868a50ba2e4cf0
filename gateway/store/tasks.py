"""Tasks: long requests run by the worker (gateway/tasks/), their state and webhook delivery.

A worker claims a task (or its webhook delivery) with a lease, in one conditional UPDATE, so
however many messages name it only one worker runs it; it renews its lease while it works,
and a task whose lease ran out (its worker died or hung) can be claimed again. Each claim
numbers the run (`attempts`): a run that was taken over can no longer renew, finish or
charge (its writes are fenced by that number), so a task ends once and is charged once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.credits import keep_hold, release_hold, settle_hold
from gateway.store.finishing import finishing
from gateway.store.tables import tasks

QUEUED, RUNNING, SUCCESS, FAILED = "queued", "running", "success", "failed"
PENDING, DELIVERED = "pending", "delivered"
_CLOCK_SLACK_SECONDS = 1.0


@dataclass(frozen=True)
class Task:
    id: str
    key_id: int
    kind: str
    route: str
    status: str
    progress: float
    params: dict[str, Any]
    input_id: str | None
    hold_id: str | None
    credits_used: int
    error: str | None
    created_at: str
    completed_at: str | None
    webhook_url: str | None
    webhook_state: str | None
    webhook_attempts: int


_COLUMNS = (
    tasks.c.id,
    tasks.c.key_id,
    tasks.c.kind,
    tasks.c.route,
    tasks.c.status,
    tasks.c.progress,
    tasks.c.params,
    tasks.c.input_id,
    tasks.c.hold_id,
    tasks.c.credits_used,
    tasks.c.error,
    tasks.c.created_at,
    tasks.c.completed_at,
    tasks.c.webhook_url,
    tasks.c.webhook_state,
    tasks.c.webhook_attempts,
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _task(row: Any) -> Task:
    values = list(row)
    values[6] = json.loads(values[6])
    return Task(*values)


class TaskStore(Protocol):
    async def create(
        self,
        task_id: str,
        key_id: int,
        kind: str,
        route: str,
        params: dict[str, Any],
        input_id: str | None,
        hold_id: str | None,
        webhook_url: str | None,
    ) -> Task:
        """The new queued task; in the same transaction its credit hold becomes its own."""

    async def get(self, task_id: str, key_id: int | None = None) -> Task | None:
        """The task (only `key_id`'s when given)."""

    async def queued(self, task_id: str) -> None:
        """Records that the task's queue message was sent."""

    async def claim(self, task_id: str, lease: float) -> int | None:
        """This worker's run number (its fencing token) if it now runs the task (queued, or its
        last worker's lease ran out); None when another worker has it or it has ended."""

    async def renew(self, task_id: str, run: int, lease: float, progress: float | None = None) -> bool:
        """Extends run `run`'s lease; False when another run has taken the task over."""

    async def requeue(self, task_id: str, run: int) -> None:
        """Run `run` gives the task up: it waits for its next queue message."""

    async def finish(self, task_id: str, run: int, status: str, charge: int, error: str | None) -> int | None:
        """Ends the task as run `run` and, in the same transaction, charges `charge` credits
        from its hold (success) or releases it (failure): the credits charged, or None when
        another run has taken the task over (this one then changes nothing)."""

    async def claim_delivery(self, task_id: str, lease: float) -> Task | None:
        """The ended task whose webhook this worker delivers now (pending, due, not held by
        another worker), or None."""

    async def delivery_done(self, task_id: str, delivered: bool, due_in: float | None) -> None:
        """After an attempt: delivered, or failed with the next attempt in `due_in` s (None: no more)."""

    async def delivery_queued(self, task_id: str) -> None:
        """Records that a delivery message was sent for a pending webhook no one held."""

    async def orphans(self, grace: float) -> tuple[list[str], list[str]]:
        """What no worker holds nor has a message for: (tasks to enqueue, deliveries to
        enqueue). Running tasks whose lease ended go back to queued first."""

    async def purge(self, ended_before: float) -> int:
        """Deletes tasks that ended before `ended_before` (epoch seconds); how many."""


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


@finishing
class SqlTaskStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self,
        task_id: str,
        key_id: int,
        kind: str,
        route: str,
        params: dict[str, Any],
        input_id: str | None,
        hold_id: str | None,
        webhook_url: str | None,
    ) -> Task:
        async with self._engine.begin() as connection:
            await connection.execute(
                insert(tasks).values(
                    id=task_id,
                    key_id=key_id,
                    kind=kind,
                    route=route,
                    status=QUEUED,
                    progress=0.0,
                    params=json.dumps(params),
                    input_id=input_id,
                    hold_id=hold_id,
                    credits_used=0,
                    created_at=_now(),
                    attempts=0,
                    webhook_url=webhook_url,
                    webhook_state=PENDING if webhook_url else None,
                    webhook_attempts=0,
                )
            )
            if hold_id is not None:
                await connection.execute(keep_hold(hold_id))
        task = await self.get(task_id)
        assert task is not None
        return task

    async def get(self, task_id: str, key_id: int | None = None) -> Task | None:
        query = select(*_COLUMNS).where(tasks.c.id == task_id)
        if key_id is not None:
            query = query.where(tasks.c.key_id == key_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return _task(row) if row else None

    async def queued(self, task_id: str) -> None:
        await self._update(tasks.c.id == task_id, queued_at=time.time())

    async def claim(self, task_id: str, lease: float) -> int | None:
        now = time.time()
        claimable = or_(tasks.c.status == QUEUED, (tasks.c.status == RUNNING) & (tasks.c.lease_until < now))
        async with self._engine.begin() as connection:
            run = await connection.execute(
                update(tasks)
                .where(tasks.c.id == task_id, claimable)
                .values(status=RUNNING, lease_until=now + lease, attempts=tasks.c.attempts + 1)
                .returning(tasks.c.attempts)
            )
            return run.scalar_one_or_none()

    def _mine(self, task_id: str, run: int) -> ColumnElement[bool]:
        return (tasks.c.id == task_id) & (tasks.c.status == RUNNING) & (tasks.c.attempts == run)

    async def renew(self, task_id: str, run: int, lease: float, progress: float | None = None) -> bool:
        values: dict[str, Any] = {"lease_until": time.time() + lease}
        if progress is not None:
            values["progress"] = progress
        return await self._update(self._mine(task_id, run), **values)

    async def requeue(self, task_id: str, run: int) -> None:
        # Its message is huey's retry, already scheduled: marked queued, not swept again.
        await self._update(self._mine(task_id, run), status=QUEUED, lease_until=None, queued_at=time.time())

    async def finish(self, task_id: str, run: int, status: str, charge: int, error: str | None) -> int | None:
        async with self._engine.begin() as connection:
            # The write first: it takes SQLite's write lock, and fences out a run taken over.
            ended = await connection.execute(
                update(tasks)
                .where(self._mine(task_id, run))
                .values(
                    status=status,
                    progress=1.0 if status == SUCCESS else tasks.c.progress,
                    error=error,
                    completed_at=_now(),
                    lease_until=None,
                    input_id=None,
                )
            )
            if ended.rowcount != 1:
                return None
            hold_id = (await connection.execute(select(tasks.c.hold_id).where(tasks.c.id == task_id))).scalar_one()
            charged = 0
            if hold_id is not None:
                if status == SUCCESS:
                    charged = await settle_hold(connection, hold_id, charge, task_id)
                else:
                    await release_hold(connection, hold_id)
            await connection.execute(
                update(tasks).where(tasks.c.id == task_id).values(hold_id=None, credits_used=charged)
            )
        return charged

    async def claim_delivery(self, task_id: str, lease: float) -> Task | None:
        now = time.time()
        claimed = await self._update(
            (tasks.c.id == task_id)
            & tasks.c.status.in_((SUCCESS, FAILED))
            & (tasks.c.webhook_state == PENDING)
            & or_(tasks.c.lease_until.is_(None), tasks.c.lease_until < now)
            # Not before its retry is due (a second message must not hurry the schedule);
            # a second of slack for the clocks of the worker that scheduled it and this one.
            & or_(tasks.c.webhook_due_at.is_(None), tasks.c.webhook_due_at <= now + _CLOCK_SLACK_SECONDS),
            lease_until=now + lease,
            webhook_attempts=tasks.c.webhook_attempts + 1,
        )
        return await self.get(task_id) if claimed else None

    async def delivery_done(self, task_id: str, delivered: bool, due_in: float | None) -> None:
        state = DELIVERED if delivered else (PENDING if due_in is not None else FAILED)
        await self._update(
            tasks.c.id == task_id,
            webhook_state=state,
            lease_until=None,
            webhook_due_at=None if due_in is None else time.time() + due_in,
        )

    async def delivery_queued(self, task_id: str) -> None:
        now = time.time()
        # Due now: swept again only if no worker has claimed it within the grace period.
        await self._update(
            (tasks.c.id == task_id)
            & (tasks.c.webhook_state == PENDING)
            & or_(tasks.c.lease_until.is_(None), tasks.c.lease_until < now),
            lease_until=None,
            webhook_due_at=now,
        )

    async def orphans(self, grace: float) -> tuple[list[str], list[str]]:
        now = time.time()
        c = tasks.c
        before = _iso(now - grace)
        async with self._engine.begin() as connection:
            # A running task whose worker died: queued again, its message not sent yet.
            await connection.execute(
                update(tasks)
                .where(c.status == RUNNING, c.lease_until < now)
                .values(status=QUEUED, lease_until=None, queued_at=None)
            )
            # Queued with no message sent (its sender died, or see above), for `grace`: the
            # gateway that made it sends one right after the row.
            run = await connection.execute(
                select(c.id).where(c.status == QUEUED, c.queued_at.is_(None), c.created_at < before)
            )
            undelivered = (
                c.status.in_((SUCCESS, FAILED))
                & (c.webhook_state == PENDING)
                & or_(
                    c.lease_until < now,  # its worker died mid-attempt
                    # No attempt scheduled (lost with a process), or one long overdue.
                    c.lease_until.is_(None)
                    & or_(c.webhook_due_at.is_(None) & (c.completed_at < before), c.webhook_due_at < now - grace),
                )
            )
            deliver = await connection.execute(select(c.id).where(undelivered))
            return list(run.scalars().all()), list(deliver.scalars().all())

    async def purge(self, ended_before: float) -> int:
        async with self._engine.begin() as connection:
            purged = await connection.execute(
                delete(tasks).where(tasks.c.completed_at.is_not(None), tasks.c.completed_at < _iso(ended_before))
            )
        return int(purged.rowcount)

    async def _update(self, where: ColumnElement[bool], **values: Any) -> bool:
        async with self._engine.begin() as connection:
            changed = await connection.execute(update(tasks).where(where).values(**values))
        return bool(changed.rowcount == 1)
