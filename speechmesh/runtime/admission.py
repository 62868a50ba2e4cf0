"""Backpressure: how much work each model of a service may have running and waiting.

A model runs at most `in_flight` calls at once and lets at most `queued` more wait for a
turn; a caller beyond that is refused at once (`Overloaded`: RESOURCE_EXHAUSTED, the
gateway's 503 with `Retry-After`) instead of joining a queue that only grows. The delay it
is told to wait is the queue ahead of it times how long a call of that model has lately
taken, divided by the calls that run at once.

A waiting caller that leaves (cancelled, disconnected, past its deadline) leaves the
queue: asyncio drops a cancelled waiter of a semaphore. The gate is per model because
models differ by two orders of magnitude in cost: a queue of Kokoro calls must not refuse
a Piper call that would take 50 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from speechmesh.common.errors import Overloaded
from speechmesh.runtime import metrics

# What a call is assumed to take before one of the model's calls has finished.
_FIRST_GUESS_SECONDS = 1.0
# Weight of the newest call in the running mean of call times: follows a change of load
# within ~10 calls, while one odd call does not swing the estimate.
_SMOOTHING = 0.2
RETRY_AFTER_MAX_SECONDS = 60


@dataclass
class _Gate:
    slots: asyncio.Semaphore
    running: int = 0
    waiting: int = 0
    seconds: float = field(default=_FIRST_GUESS_SECONDS)


class Admission:
    """The gates of one service's models."""

    def __init__(self, service: str, in_flight: int, queued: int) -> None:
        if in_flight < 1 or queued < 0:
            raise ValueError("in_flight must be at least 1 and queued at least 0")
        self._service = service
        self._in_flight = in_flight
        self._queued = queued
        self._gates: dict[str, _Gate] = {}

    def _gate(self, model: str) -> _Gate:
        gate = self._gates.get(model)
        if gate is None:
            gate = self._gates[model] = _Gate(asyncio.Semaphore(self._in_flight))
        return gate

    def retry_after(self, model: str) -> int:
        """Whole seconds until a call arriving now could expect a turn."""
        gate = self._gate(model)
        ahead = gate.waiting + 1
        seconds = math.ceil(ahead * gate.seconds / self._in_flight)
        return max(1, min(RETRY_AFTER_MAX_SECONDS, seconds))

    @contextlib.asynccontextmanager
    async def admit(self, model: str) -> AsyncIterator[None]:
        """Holds one of `model`'s turns for the block; raises Overloaded when none is free
        and the queue is full."""
        gate = self._gate(model)
        labels = (self._service, model)
        if gate.running + gate.waiting >= self._in_flight + self._queued:
            metrics.ADMISSION_REFUSED.labels(*labels).inc()
            raise Overloaded(model, self.retry_after(model))
        gate.waiting += 1
        metrics.QUEUE_DEPTH.labels(*labels).set(gate.waiting)
        try:
            await gate.slots.acquire()
        finally:
            gate.waiting -= 1
            metrics.QUEUE_DEPTH.labels(*labels).set(gate.waiting)
        gate.running += 1
        metrics.MODEL_IN_FLIGHT.labels(*labels).set(gate.running)
        started = time.perf_counter()
        try:
            yield
        finally:
            gate.running -= 1
            gate.slots.release()
            metrics.MODEL_IN_FLIGHT.labels(*labels).set(gate.running)
            took = time.perf_counter() - started
            gate.seconds += _SMOOTHING * (took - gate.seconds)
