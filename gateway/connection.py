"""ASGI middleware that owns the client's side of each request: how long its body may take,
what happens to a body that is not read, and what happens when the client leaves.

- While a request body is still expected, each wait for the next piece of it is bounded
  by an idle timeout, and the body must keep an average pace (after one idle period of
  grace, `min_bytes_per_second`): a client that sends headers and then nothing, or a
  byte now and then, gets 408 `request_timeout` instead of holding a connection and a
  task for ever, while a slow but steady upload of 100 MB still gets through.
- A response that starts before the body was read to its end (a 401 before an unread
  body, a 413 at the limit, a 408) carries `Connection: close`, so the server closes the
  connection after it instead of reading and discarding the rest of the body.
- Once the body has arrived, the only thing the client can still send is its
  disconnect. It is watched for, and when it comes before the response is complete the
  request's task is cancelled: the upstream gRPC call in flight is cancelled with it, and
  the service stops its work (a transcription of an hour of audio does not go on for a
  client that has gone).

Size limits depend on the route (the plan's text limit for JSON, per file for uploads)
and are enforced where the body is read (`gateway/body.py`, `gateway/uploads.py`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.errors import ApiError

# The key this guard sets in the request's state when the client left before its response.
ABANDONED = "abandoned"
Scope = dict[str, Any]
Message = dict[str, Any]


def _expects_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False


class ConnectionGuard:
    def __init__(self, app: Any, idle_seconds: float, min_bytes_per_second: int) -> None:
        self.app = app
        self.idle_seconds = idle_seconds
        self.min_bytes_per_second = min_bytes_per_second

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = _Request(self, receive, asyncio.current_task())
        if not _expects_body(scope):
            request.body_complete()
        try:
            await self.app(scope, request.receive, request.sender(send))
        except asyncio.CancelledError:
            if not request.abandoned:
                raise
            # Cancelled here because the client left: nobody is waiting for an answer.
            scope.setdefault("state", {})[ABANDONED] = True
            asyncio.current_task().uncancel()  # type: ignore[union-attr]  # None only outside a task
        finally:
            request.close()


class _Request:
    """One request's receive channel: body pacing, then the watch for a disconnect."""

    def __init__(self, guard: ConnectionGuard, receive: Any, task: asyncio.Task | None) -> None:
        self._guard = guard
        self._receive = receive
        self._task = task
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._started = loop.time()
        self._received = 0
        self._pending_body = True
        # Once the body is in, a watcher takes every message the server still delivers
        # (a body-less request's empty body, then the disconnect) and queues it for the app.
        self._watch: asyncio.Task[None] | None = None
        self._delivered: asyncio.Queue[Message] = asyncio.Queue()
        self._disconnect: Message | None = None
        self._responded = False
        self.abandoned = False

    def body_complete(self) -> None:
        self._pending_body = False
        self._watch = asyncio.ensure_future(self._watch_disconnect())

    async def _watch_disconnect(self) -> None:
        while True:
            message = await self._receive()
            self._delivered.put_nowait(message)
            if message["type"] == "http.disconnect":
                if not self._responded and self._task is not None:
                    self.abandoned = True
                    self._task.cancel()
                return

    async def receive(self) -> Message:
        if self._disconnect is not None:
            return self._disconnect
        if self._watch is not None:
            message = await self._delivered.get()
            if message["type"] == "http.disconnect":
                self._disconnect = message
            return message
        guard = self._guard
        paced = self._started + guard.idle_seconds + self._received / guard.min_bytes_per_second
        wait = min(guard.idle_seconds, paced - self._loop.time())
        try:
            # asyncio.timeout, not wait_for: no task per piece of body.
            async with asyncio.timeout(max(wait, 0.0)):
                message = await self._receive()
        except TimeoutError:
            raise ApiError(
                408,
                "request_timeout",
                f"The request body did not arrive in time: at most {guard.idle_seconds:g} s may pass "
                f"without data, and it must average {guard.min_bytes_per_second // 1024} KiB/s.",
            ) from None
        self._received += len(message.get("body", b""))
        if message["type"] == "http.disconnect":
            self._pending_body = False
            self._disconnect = message
        elif not message.get("more_body", False):
            self.body_complete()
        return message

    def sender(self, send: Any) -> Any:
        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start" and self._pending_body:
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                self._responded = True
            await send(message)

        return guarded_send

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
