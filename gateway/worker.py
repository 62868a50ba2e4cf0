"""`python -m gateway.worker`: runs the gateway's tasks (gateway/tasks/) and delivers webhooks.

huey's consumer (its threads) takes tasks off the queue; their work runs as coroutines on one
event loop in a thread of its own, with the gateway's stores and service clients opened once.
On that loop a sweeper, every half lease: enqueues again what no live worker holds (a task or
delivery whose worker died, an enqueue lost with its process), and now and then releases the
credits of requests whose gateway died and purges expired results and conversations.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from prometheus_client import Counter, start_http_server

from gateway.settings import GatewaySettings, client_config
from gateway.store.stores import Stores, open_stores
from gateway.store.tasks import SUCCESS
from gateway.tasks import webhooks
from gateway.tasks.queue import DELIVERY_RETRIES, TaskQueue, delivery_delay, open_huey
from gateway.tasks.runner import Runner
from gateway.tiers import ModelTiers
from speechmesh.clients.mesh import Mesh
from speechmesh.common.logging import configure_logging

log = logging.getLogger(__name__)
T = TypeVar("T")

DELIVERIES = Counter("speechmesh_worker_webhook_deliveries", "Webhook delivery attempts, by outcome.", ["outcome"])
# Results, conversations and expired holds are swept this often.
_HOUSEKEEPING_SECONDS = 60.0


class DeliveryFailed(Exception):
    """The receiver did not take the webhook: huey tries again later."""


class Worker:
    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="worker-loop", daemon=True)
        self._thread.start()
        self.stores: Stores = self.call(open_stores(settings))
        self._mesh = self.call(self._open_mesh())
        self.queue = TaskQueue(
            open_huey(settings), settings.webhook_retry_seconds, run=self._run_task, deliver=self._deliver
        )
        tiers = ModelTiers(self._mesh)
        self._runner = Runner(self.stores, self._mesh, tiers, self.queue, settings.task_lease_seconds)
        self._sweeping: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(self._sweep(), self._loop)

    async def _open_mesh(self) -> Mesh:
        return Mesh(client_config(self._settings))

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _run_task(self, task_id: str) -> None:
        self.call(self._runner.run(task_id))

    def _deliver(self, task_id: str) -> None:
        self.call(self.deliver(task_id))

    def public_url(self) -> str:
        return self._settings.public_url or f"http://{self._settings.host}:{self._settings.port}"

    async def deliver(self, task_id: str) -> None:
        tasks = self.stores.tasks
        task = await tasks.claim_delivery(task_id, self._settings.task_lease_seconds)
        if task is None or task.webhook_url is None:
            return  # delivered, given up, or another worker is at it
        result_url = f"{self.public_url()}/v1/results/{task.id}" if task.status == SUCCESS else None
        secret = await self.stores.webhook_secrets.secret(task.key_id)
        try:
            status = await webhooks.deliver(
                task.webhook_url, secret, task, result_url, self._settings.webhook_allow_private
            )
            why = f"the receiver answered {status}"
        except Exception as error:  # a refused URL, no answer, a bad TLS certificate: all retried
            status, why = 0, f"{type(error).__name__}: {error}"
        delivered = 200 <= status < 300
        DELIVERIES.labels("delivered" if delivered else "failed").inc()
        attempt = task.webhook_attempts
        more = not delivered and attempt <= DELIVERY_RETRIES
        due_in = delivery_delay(attempt, self._settings.webhook_retry_seconds) if more else None
        await tasks.delivery_done(task.id, delivered, due_in)
        log.info(
            "webhook delivery",
            extra={"task_id": task.id, "attempt": attempt, "delivered": delivered, "detail": why},
        )
        if more:
            raise DeliveryFailed(why)

    async def _sweep(self) -> None:
        grace = self._settings.task_lease_seconds
        housekept = 0.0
        while True:
            try:
                run, deliver = await self.stores.tasks.orphans(grace)
                for task_id in run:
                    await self.queue.run(task_id)
                    await self.stores.tasks.queued(task_id)
                for task_id in deliver:
                    await self.queue.deliver(task_id)
                    await self.stores.tasks.delivery_queued(task_id)
                if time.monotonic() - housekept > _HOUSEKEEPING_SECONDS:
                    housekept = time.monotonic()
                    await self.stores.credits.release_expired()
                    await self.stores.results.purge()
                    await self.stores.conversations.purge()
                    # A task is shown as long as its result is kept.
                    await self.stores.tasks.purge(time.time() - self._settings.result_seconds)
            except Exception:
                log.exception("sweeping tasks failed; trying again")
            await asyncio.sleep(grace / 2)

    def close(self) -> None:
        self._sweeping.cancel()
        self.call(self._mesh.close())
        self.call(self.stores.close())
        self._loop.call_soon_threadsafe(self._loop.stop)


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level, settings.log_json)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.host)
    worker = Worker(settings)
    consumer = worker.queue.huey.create_consumer(workers=settings.task_workers, worker_type="thread")
    try:
        # Until SIGINT (tasks in flight finish first) or SIGTERM (they stop; their leases run
        # out and another worker runs them again).
        consumer.run()
    finally:
        worker.close()


if __name__ == "__main__":
    main()
