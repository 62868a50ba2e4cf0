"""Tasks: long requests run by the worker (gateway/tasks/), their state and webhook delivery.

A worker claims a task (or its webhook delivery) with a lease, in one conditional UPDATE, so
however many workers see it queued twice only one runs it; a worker renews its lease while it
works, and a task whose lease ran out (its worker died) can be claimed again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.tables import tasks

QUEUED, RUNNING, SUCCESS, FAILED = "queued", "running", "success", "failed"
PENDING, DELIVERED = "pending", "delivered"


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
    ) -> Task: ...

    async def get(self, task_id: str, key_id: int | None = None) -> Task | None:
        """The task (only `key_id`'s when given)."""

    async def claim(self, task_id: str, lease: float) -> bool:
        """Whether this worker now runs the task (queued, or its last worker's lease ran out)."""

    async def renew(self, task_id: str, lease: float, progress: float | None = None) -> None: ...

    async def requeue(self, task_id: str) -> None:
        """Gives up this worker's claim: the task waits to run again."""

    async def attempts(self, task_id: str) -> int:
        """How many times a worker has started the task."""

    async def finish(self, task_id: str, status: str, credits_used: int, error: str | None) -> None: ...

    async def claim_delivery(self, task_id: str, lease: float) -> Task | None:
        """The ended task whose webhook this worker delivers now, or None."""

    async def delivery_done(self, task_id: str, delivered: bool, due_in: float | None) -> None:
        """After an attempt: delivered, or failed with the next attempt in `due_in` s (None: no more)."""

    async def orphans(self, grace: float) -> tuple[list[str], list[str]]:
        """Tasks and deliveries no worker holds or has scheduled: (to run, to deliver)."""


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

    async def claim(self, task_id: str, lease: float) -> bool:
        now = time.time()
        claimable = or_(tasks.c.status == QUEUED, (tasks.c.status == RUNNING) & (tasks.c.lease_until < now))
        async with self._engine.begin() as connection:
            claimed = await connection.execute(
                update(tasks)
                .where(tasks.c.id == task_id, claimable)
                .values(status=RUNNING, lease_until=now + lease, attempts=tasks.c.attempts + 1)
            )
        return claimed.rowcount == 1

    async def renew(self, task_id: str, lease: float, progress: float | None = None) -> None:
        values: dict[str, Any] = {"lease_until": time.time() + lease}
        if progress is not None:
            values["progress"] = progress
        async with self._engine.begin() as connection:
            await connection.execute(update(tasks).where(tasks.c.id == task_id).values(**values))

    async def requeue(self, task_id: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(update(tasks).where(tasks.c.id == task_id).values(status=QUEUED, lease_until=None))

    async def attempts(self, task_id: str) -> int:
        async with self._engine.connect() as connection:
            found = await connection.execute(select(tasks.c.attempts).where(tasks.c.id == task_id))
            return int(found.scalar_one_or_none() or 0)

    async def finish(self, task_id: str, status: str, credits_used: int, error: str | None) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                update(tasks)
                .where(tasks.c.id == task_id)
                .values(
                    status=status,
                    progress=1.0 if status == SUCCESS else tasks.c.progress,
                    credits_used=credits_used,
                    error=error,
                    completed_at=_now(),
                    lease_until=None,
                    input_id=None,
                    hold_id=None,
                )
            )

    async def claim_delivery(self, task_id: str, lease: float) -> Task | None:
        now = time.time()
        async with self._engine.begin() as connection:
            claimed = await connection.execute(
                update(tasks)
                .where(
                    tasks.c.id == task_id,
                    tasks.c.status.in_((SUCCESS, FAILED)),
                    tasks.c.webhook_state == PENDING,
                    or_(tasks.c.lease_until.is_(None), tasks.c.lease_until < now),
                )
                .values(lease_until=now + lease, webhook_attempts=tasks.c.webhook_attempts + 1)
            )
        return await self.get(task_id) if claimed.rowcount == 1 else None

    async def delivery_done(self, task_id: str, delivered: bool, due_in: float | None) -> None:
        state = DELIVERED if delivered else (PENDING if due_in is not None else FAILED)
        async with self._engine.begin() as connection:
            await connection.execute(
                update(tasks)
                .where(tasks.c.id == task_id)
                .values(
                    webhook_state=state,
                    lease_until=None,
                    webhook_due_at=None if due_in is None else time.time() + due_in,
                )
            )

    async def orphans(self, grace: float) -> tuple[list[str], list[str]]:
        now = time.time()
        c = tasks.c
        # Queued for longer than `grace` (the enqueue after the insert may have died with its
        # process), or running under an ended lease (its worker died).
        runnable = or_(
            (c.status == QUEUED)
            & (c.created_at < datetime.fromtimestamp(now - grace, UTC).isoformat(timespec="seconds")),
            (c.status == RUNNING) & (c.lease_until < now),
        )
        undelivered = (
            c.status.in_((SUCCESS, FAILED))
            & (c.webhook_state == PENDING)
            & or_(
                c.lease_until < now,
                c.lease_until.is_(None) & or_(c.webhook_due_at.is_(None), c.webhook_due_at < now - grace),
            )
        )
        async with self._engine.connect() as connection:
            run = (await connection.execute(select(c.id).where(runnable))).scalars().all()
            deliver = (await connection.execute(select(c.id).where(undelivered))).scalars().all()
        return list(run), list(deliver)
