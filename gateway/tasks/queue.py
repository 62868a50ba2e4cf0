"""The durable task queue: huey, on SQLite beside the database by default, on Redis when
`redis_url` is set (several gateway and worker processes or pods share it).

Two huey tasks: `run_task(task_id)` and `deliver_webhook(task_id)`; their bodies are the
worker's (gateway/worker.py). The gateway only enqueues. huey takes a message off the queue
before running it, so a worker killed mid-task loses it: the task's row in the database (with
its lease) is the truth, and the worker's sweeper enqueues again what no live worker holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a queue is opened: huey imports redis-py, which loads OpenTelemetry's SDK
    from huey import Huey

from gateway.settings import GatewaySettings

# Webhook delivery attempts after the first: `webhook_retry_seconds` (5 s), then each 3x
# longer (15 s, 45 s, ... 3 h), about 4.6 h in all, well inside the result's 24 hours.
DELIVERY_RETRIES = 8
DELIVERY_BACKOFF = 3
# A run that failed because a service was down waits this long and runs again, this often.
RUN_RETRIES = 3
RUN_RETRY_SECONDS = 10
# Runs of one task at most, whatever ended them (a worker that died or hung counts).
MAX_RUNS = RUN_RETRIES + 3


def open_huey(settings: GatewaySettings) -> Huey:
    from huey import RedisHuey, SqliteHuey

    if settings.redis_url:
        return RedisHuey("speechmesh", url=settings.redis_url)
    return SqliteHuey("speechmesh", filename=str(settings.database_path.parent / "tasks.db"))


def delivery_delay(attempt: int, first_retry_seconds: float) -> float:
    """Seconds before delivery attempt `attempt + 1` (attempt 1 is the first)."""
    return float(first_retry_seconds * DELIVERY_BACKOFF ** (attempt - 1))


def _elsewhere(*_: Any) -> None:
    raise RuntimeError("tasks run in the worker process (python -m gateway.worker)")


class TaskQueue:
    def __init__(
        self,
        huey: Huey,
        first_retry_seconds: float,
        run: Callable[[str], None] = _elsewhere,
        deliver: Callable[[str], None] = _elsewhere,
    ) -> None:
        self.huey = huey

        # huey names a task by its function's module and name, and runs a message only where
        # a task of that name is registered: these two are defined here for the gateway
        # (which only enqueues) and the worker alike, whatever the handlers passed.
        def run_task(task_id: str) -> None:
            run(task_id)

        def deliver_webhook(task_id: str) -> None:
            deliver(task_id)

        self._run = huey.task(name="run_task", retries=RUN_RETRIES, retry_delay=RUN_RETRY_SECONDS)(run_task)
        self._deliver = huey.task(
            name="deliver_webhook",
            retries=DELIVERY_RETRIES,
            retry_delay=first_retry_seconds,
            retry_backoff=DELIVERY_BACKOFF,
        )(deliver_webhook)

    async def run(self, task_id: str) -> None:
        # A write to SQLite or Redis: off the event loop.
        await asyncio.to_thread(self._run, task_id)

    async def deliver(self, task_id: str) -> None:
        await asyncio.to_thread(self._deliver, task_id)
