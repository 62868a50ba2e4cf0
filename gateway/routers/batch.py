"""POST /v1/tts/batch/: many texts spoken as one task (202 at once; a ZIP result, a webhook)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from gateway.admission import Ticket, admit
from gateway.body import json_body
from gateway.clients import tts_client
from gateway.openapi import AUTHENTICATED, BODY_ERRORS, errors, request_body
from gateway.plans import check_text
from gateway.pricing import BATCH_CHARACTERS
from gateway.routers import both
from gateway.schemas import BATCH_TEXTS_MAX, TaskOut, TtsBatchRequest
from gateway.synthesis import priced_model
from gateway.tasks.submit import checked_webhook_url, submit
from speechmesh.clients.tts import TtsClient

router = APIRouter()
_BODY = json_body(TtsBatchRequest, texts=BATCH_TEXTS_MAX)


@both(
    router,
    "POST",
    "/v1/tts/batch/",
    status_code=202,
    response_model=TaskOut,
    responses=errors(*BODY_ERRORS),
    openapi_extra={**request_body(TtsBatchRequest, "application/json"), **AUTHENTICATED},
)
async def batch(
    request: Request,
    ticket: Ticket = Depends(admit),
    body: TtsBatchRequest = Depends(_BODY),
    tts: TtsClient = Depends(tts_client),
) -> JSONResponse:
    """Text to speech for many texts, as a task.

    Answers 202 at once with the task; `GET /v1/tasks/{task_id}` follows it, and once it
    succeeded `GET /v1/results/{task_id}` is a ZIP of one file per text (`001.mp3`,
    `002.mp3`, ...). With `webhook_url` the result is also POSTed there, signed (Standard
    Webhooks). Priced as `/v1/tts/` on the sum of the texts, charged when the task succeeds."""
    for index, text in enumerate(body.texts):
        check_text(ticket.caller.plan, len(text), f"texts[{index}]")
    webhook_url = await checked_webhook_url(request, body.webhook_url)
    model = await priced_model(tts, body.model, body.voice)
    await ticket.meter(BATCH_CHARACTERS, sum(len(text) for text in body.texts), model=model)
    params = body.model_dump(exclude={"webhook_url"})
    return await submit(request, ticket, "tts_batch", params, webhook_url)
