"""Turning an admitted request into a task: 202 Accepted with its id, at once.

The upload (if any) is stored first, then the task's row, then the queue message: a crash in
between leaves a queued row the worker's sweeper finds, never a message without its row. The
request's credit hold becomes the task's in the row's transaction (charged or released when
the task ends).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from gateway.admission import Ticket
from gateway.errors import ApiError
from gateway.schemas import TaskOut
from gateway.store.results import new_id
from gateway.store.tasks import Task
from gateway.tasks import webhooks
from gateway.uploads import UploadedFile


async def checked_webhook_url(request: Request, url: str | None) -> str | None:
    """The webhook URL, or None when the request has none; 400 for one that is refused."""
    if url is None or not url.strip():
        return None
    try:
        await webhooks.check_url(url.strip(), request.app.state.settings.webhook_allow_private)
    except webhooks.RefusedUrl as refused:
        raise ApiError(400, "bad_request", f"'webhook_url' is refused: {refused}.", param="webhook_url") from None
    return url.strip()


def task_out(request: Request, task: Task) -> TaskOut:
    settings = request.app.state.settings
    base = settings.public_url or str(request.base_url).rstrip("/")
    return TaskOut(
        task_id=task.id,
        status=task.status,
        progress=round(task.progress, 4),
        created_at=webhooks.utc_stamp(task.created_at) or "",
        completed_at=webhooks.utc_stamp(task.completed_at),
        credits_used=task.credits_used,
        status_url=f"{base}/v1/tasks/{task.id}",
        result_url=f"{base}/v1/results/{task.id}" if task.status == "success" else None,
        error=None if task.error is None else json.loads(task.error),
    )


async def submit(
    request: Request,
    ticket: Ticket,
    kind: str,
    params: dict[str, Any],
    webhook_url: str | None,
    upload: UploadedFile | None = None,
) -> JSONResponse:
    stores = request.app.state.stores
    key_id = ticket.caller.key.id
    input_id = None
    if upload is not None:
        input_id = new_id("upload")
        await stores.results.put(input_id, key_id, upload.content_type, upload.filename, upload.spool)
    bill = ticket.bill
    hold = bill.hold if bill else None
    task_id = new_id("task")
    # Shielded: a client leaving now must not cancel between the row and its message. The
    # row makes the hold the task's in its own transaction; until it commits the request
    # still owns the hold (and releases it if this fails).
    task = await asyncio.shield(
        stores.tasks.create(
            task_id, key_id, kind, ticket.route, params, input_id, hold.id if hold else None, webhook_url
        )
    )
    ticket.transfer()
    await asyncio.shield(_enqueue(request, task.id))
    return JSONResponse(task_out(request, task).model_dump(), status_code=202)


async def _enqueue(request: Request, task_id: str) -> None:
    """The task's queue message, then the note that it was sent (else the worker's sweeper
    sends one after a grace period)."""
    await request.app.state.tasks.run(task_id)
    await request.app.state.stores.tasks.queued(task_id)
