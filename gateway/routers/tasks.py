"""GET /v1/tasks/{task_id} (a task's state) and GET /v1/results/{result_id} (its result).

Only the key that made a task sees it and its result; to any other key, an expired result
and an id that never existed look the same: 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.admission import Ticket, admit
from gateway.errors import ApiError
from gateway.openapi import AUTHENTICATED, QUERY_ERRORS, binary, errors
from gateway.routers import both
from gateway.schemas import TaskOut
from gateway.store.results import valid_id
from gateway.tasks.submit import task_out

router = APIRouter()
_ID_MAX_CHARS = 64


def _not_found(kind: str) -> ApiError:
    return ApiError(404, "not_found", f"No such {kind} for this API key (results are kept 24 hours).")


@both(
    router,
    "GET",
    "/v1/tasks/{task_id}",
    response_model=TaskOut,
    responses=errors(*QUERY_ERRORS, 404),
    openapi_extra=AUTHENTICATED,
)
async def task_status(
    request: Request,
    task_id: str = Path(max_length=_ID_MAX_CHARS, description="The id the task's 202 gave."),
    ticket: Ticket = Depends(admit),
) -> JSONResponse:
    """A task's state.

    `queued`, `running`, `success` (then `result_url`) or `failed` (then `error`), its
    progress and credits. Only the key that made the task sees it. Free."""
    task = await request.app.state.stores.tasks.get(task_id, ticket.caller.key.id) if valid_id(task_id) else None
    if task is None:
        raise _not_found("task")
    return JSONResponse(task_out(request, task).model_dump())


@both(
    router,
    "GET",
    "/v1/results/{result_id}",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The stored result: a ZIP of audio files (batch TTS), the transcript JSON (STT), audio.",
            **binary("application/zip", "application/json", "audio/mpeg", "audio/wav"),
        },
        **errors(*QUERY_ERRORS, 404),
    },
    openapi_extra=AUTHENTICATED,
)
async def result(
    request: Request,
    result_id: str = Path(max_length=_ID_MAX_CHARS, description="The task id, or an audio_url's id."),
    ticket: Ticket = Depends(admit),
) -> StreamingResponse:
    """Download a result.

    A task's result (a ZIP of audio files for batch TTS and stem separation, the transcript
    JSON for STT) or the audio of an `audio_url` (voice chat, speech translation), kept 24
    hours. Only the key that made it can read it; to any other key it does not exist. Free."""
    stores = request.app.state.stores
    found = await stores.results.find(result_id, ticket.caller.key.id)
    if found is None:
        raise _not_found("result")
    return StreamingResponse(
        stores.results.read(found),
        media_type=found.content_type,
        headers={
            "Content-Length": str(found.size),
            "Content-Disposition": f'attachment; filename="{found.filename}"',
        },
    )
