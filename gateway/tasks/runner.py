"""Running one task in the worker: claim it, do its work through the service clients, store
the result, settle its credits, record how it ended and hand its webhook to delivery.

Kinds: `tts_batch` (POST /v1/tts/batch/: every text spoken, the files in one ZIP), `stt`
(POST /v1/stt/ with a webhook_url: the transcript JSON, from the stored upload) and
`separate` (POST /v1/audio/separate/ with a webhook_url: the ZIP of stems). A task that
succeeded is charged for what it used, as a request is; a failed one costs nothing. A service
that is down makes the run wait and try again (`queue.RUN_RETRIES`); any other failure ends
the task `failed` with the error the API would have answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import IO, Any

import grpc
from prometheus_client import Counter

from gateway.errors import ApiError, rpc_failure
from gateway.pricing import PRICES
from gateway.routers.audio_tools import separate_within
from gateway.routers.stt import recognition_config, stt_response
from gateway.routers.tts import synthesize_request
from gateway.schemas import TtsBatchRequest, TtsRequest
from gateway.store.stores import Stores
from gateway.store.tasks import FAILED, SUCCESS, Task
from gateway.tasks.queue import MAX_RUNS, RUN_RETRIES, TaskQueue
from gateway.tiers import ModelTiers
from gateway.uploads import AudioBudget, recognize_within
from speechmesh.clients.mesh import Mesh

log = logging.getLogger(__name__)
TASKS = Counter("speechmesh_worker_tasks", "Tasks that ended, by kind and status.", ["kind", "status"])

Progress = Callable[[float], Awaitable[None]]


@dataclass
class Output:
    file: IO[bytes]
    content_type: str
    filename: str
    amount: float  # what the task used, in its price's unit
    model: str
    grade: str | None = None  # where the price has grades (stem separation's stem count)


class Retry(Exception):
    """The work could not reach a service: run the task again later."""


class Runner:
    def __init__(self, stores: Stores, mesh: Mesh, tiers: ModelTiers, queue: TaskQueue, lease: float) -> None:
        self._stores = stores
        self._mesh = mesh
        self._tiers = tiers
        self._queue = queue
        self._lease = lease

    async def run(self, task_id: str) -> None:
        tasks = self._stores.tasks
        run = await tasks.claim(task_id, self._lease)
        if run is None:
            return  # another worker has it, or it has ended
        task = await tasks.get(task_id)
        assert task is not None
        if run > MAX_RUNS:
            # Its workers kept dying or hanging on it: it is not worth another.
            message = f"The task did not complete in {MAX_RUNS} runs; please retry."
            await self._end(task, run, FAILED, 0, {"code": "internal_error", "message": message})
            return
        renewing = asyncio.get_running_loop().create_task(self._renew(task.id, run))
        try:
            output = await self._work(task, run)
            with output.file:
                await self._stores.results.put(task.id, task.key_id, output.content_type, output.filename, output.file)
        except grpc.aio.AioRpcError as error:
            failure = rpc_failure(error)
            if failure.unavailable and run <= RUN_RETRIES:
                await tasks.requeue(task.id, run)
                raise Retry(failure.message) from None
            await self._end(task, run, FAILED, 0, {"code": failure.code, "message": failure.message, **failure.fields})
            return
        except ApiError as refused:  # as the request would have been answered (402 past its credits)
            await self._end(task, run, FAILED, 0, {"code": refused.code, "message": refused.message, **refused.fields})
            return
        except Exception:
            log.exception("task failed", extra={"task_id": task.id})
            await self._end(
                task, run, FAILED, 0, {"code": "internal_error", "message": "The task failed; please retry."}
            )
            return
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        price = PRICES[task.route]
        credits = price.of(output.amount, await self._tiers.of(output.model) if price.by_tier else output.grade)
        await self._end(task, run, SUCCESS, credits, None)

    async def _end(self, task: Task, run: int, status: str, charge: int, error: dict[str, Any] | None) -> None:
        charged = await self._stores.tasks.finish(task.id, run, status, charge, json.dumps(error) if error else None)
        if charged is None:
            log.warning("task taken over by another run; this one ends", extra={"task_id": task.id, "run": run})
            return
        if task.input_id:
            await self._stores.results.delete(task.input_id)
        TASKS.labels(task.kind, status).inc()
        log.info("task ended", extra={"task_id": task.id, "status": status, "credits": charged})
        if task.webhook_url:
            await self._queue.deliver(task.id)

    async def _renew(self, task_id: str, run: int) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                if not await self._stores.tasks.renew(task_id, run, self._lease):
                    log.warning("task taken over by another run", extra={"task_id": task_id, "run": run})
                    return
            except Exception:  # the database away for a moment: the next renewal may reach it
                log.warning("renewing a task's lease failed", extra={"task_id": task_id}, exc_info=True)

    async def _work(self, task: Task, run: int) -> Output:
        async def progress(done: float) -> None:
            await self._stores.tasks.renew(task.id, run, self._lease, progress=done)

        if task.kind == "tts_batch":
            return await self._tts_batch(task, progress)
        if task.kind == "stt":
            return await self._stt(task)
        if task.kind == "separate":
            return await self._separate(task)
        raise ValueError(f"unknown task kind {task.kind!r}")

    async def _tts_batch(self, task: Task, progress: Progress) -> Output:
        # The batch request's own fields: each text is spoken as POST /v1/tts/ would speak it.
        batch = TtsBatchRequest.model_validate(task.params)
        tts = self._mesh.tts
        assert tts is not None  # the gateway always has a TTS target
        file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the caller, with the Output)
        model = ""
        with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive:
            for index, text in enumerate(batch.texts, start=1):
                one = TtsRequest(**batch.model_dump(exclude={"texts", "webhook_url"}), text=text)
                audio, result = await tts.synthesize(synthesize_request(one))
                model = model or result.model
                archive.writestr(f"{index:03d}.{batch.format}", audio)
                await progress(index / len(batch.texts))
        characters = sum(len(text) for text in batch.texts)
        return Output(file, "application/zip", f"{task.id}.zip", characters, model)

    async def _upload(self, task: Task) -> Any:
        """The chunks of the task's stored upload."""
        assert task.input_id is not None
        stored = await self._stores.results.find(task.input_id, task.key_id)
        if stored is None:
            raise ValueError("the task's upload is gone")
        return self._stores.results.read(stored)

    async def _separate(self, task: Task) -> Output:
        if self._mesh.audio is None:
            raise ApiError(503, "model_loading", "The audio service is not deployed on this server.")
        received = await separate_within(self._mesh.audio, task.params, await self._upload(task))
        seconds = received.report.input_duration_ms / 1000
        return Output(
            received.file,
            "application/zip",
            f"{task.id}.zip",
            seconds,
            received.report.model,
            str(task.params["stems"]),
        )

    async def _stt(self, task: Task) -> Output:
        params = task.params
        assert self._mesh.stt is not None  # the gateway always has an STT target
        audio = await self._upload(task)
        budget = AudioBudget(**params["budget"])
        reply = await recognize_within(self._mesh.stt, recognition_config(params), audio, budget)
        body = stt_response(reply, params["timestamps"], params["diarize"])
        data = json.dumps(body.model_dump(exclude={"words"} if body.words is None else None)).encode()
        file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the caller, with the Output)
        file.write(data)
        return Output(file, "application/json", f"{task.id}.json", reply.duration_ms / 1000, reply.model)
