"""A stub OpenAI-compatible server on loopback, for the chat service's tests: it speaks the
part of the OpenAI API the engine uses (GET /v1/models, streamed POST /v1/chat/completions)
and records what it received and how much of each reply it wrote before the client went
away, so stopping early is seen from the server's side. The `stub` fixture (registered by
tests/conftest.py) serves one per test."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

KEY = "sk-test-0123456789secret"
WORDS = [f"word{index} " for index in range(40)]


@dataclass
class Stub:
    """What the stub answers (`mode`) and what it saw."""

    port: int = 0
    mode: str = "stream"
    delay: float = 0.0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    written: int = 0
    disconnected: bool = False
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def handler_for(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: the streamed body ends when the connection does, no chunking needed.
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path != "/v1/models":
                self._json(404, {"error": {"message": "not found"}})
                return
            self._json(200, {"object": "list", "data": [{"id": "stub-model", "object": "model"}]})

        def do_POST(self) -> None:
            try:
                self._post()
            finally:
                stub.finished.set()

        def _post(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            stub.bodies.append(json.loads(self.rfile.read(length)))
            stub.authorizations.append(self.headers.get("Authorization"))
            if self.path != "/v1/chat/completions":
                self._json(404, {"error": {"message": "not found"}})
                return
            if stub.mode == "500":
                # Echoes the key, as some servers do: the engine must not pass it on.
                self._json(500, {"error": {"message": f"model crashed (key {KEY})"}})
                return
            if stub.mode == "401":
                self._json(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}})
                return
            if stub.mode == "json":
                self._json(
                    200,
                    {
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": "whole"}, "finish_reason": "stop"}
                        ]
                    },
                )
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            if stub.mode == "slow":
                time.sleep(1.0)
            chunks: list[dict[str, Any]] = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
            chunks += [{"choices": [{"index": 0, "delta": {"content": word}}]} for word in WORDS]
            if stub.mode == "error_chunk":
                chunks[3:] = [{"error": {"message": "out of memory"}}]
            finish = "length" if stub.mode == "length" else "stop"
            chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            try:
                for chunk in chunks:
                    self._send_event(f"data: {json.dumps(chunk)}\n\n")
                    stub.written += 1
                    if stub.delay:
                        time.sleep(stub.delay)
                self._send_event("data: [DONE]\n\n")
            except (BrokenPipeError, ConnectionResetError):
                stub.disconnected = True

        def _send_event(self, text: str) -> None:
            self.wfile.write(text.encode())
            self.wfile.flush()

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def stub() -> Iterator[Stub]:
    state = Stub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
