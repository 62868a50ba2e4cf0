"""The OpenAI-compatible language model against a real HTTP server on loopback.

The stub speaks the part of the OpenAI API the engine uses (GET /v1/models, streamed
POST /v1/chat/completions) and records what it received and how much of each reply it
wrote before the client went away, so stopping early is seen from the server's side.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from services.chat.engines.openai_compatible import OpenAiCompatibleModel
from services.chat.processors import Message, OnDelta
from speechmesh.common.errors import ModelUnavailable, UpstreamUnavailable

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


def model(base_url: str, api_key: str = KEY, timeout: float = 5.0) -> OpenAiCompatibleModel:
    engine = OpenAiCompatibleModel(base_url, api_key, "stub-model", context_tokens=4096, timeout_seconds=timeout)
    engine.load()
    engine.warm_up()
    return engine


def collect(deltas: list[str]) -> OnDelta:
    """An `on_delta` that keeps every piece and never asks to stop."""

    def on_delta(piece: str) -> bool:
        deltas.append(piece)
        return False

    return on_delta


MESSAGES = [
    Message("system", "You are brief."),
    Message("user", "Say forty words."),
    Message("assistant", "Which ones?"),
    Message("user", "Any — über alles."),
]


def test_streams_deltas_in_order_and_sends_the_request(stub: Stub) -> None:
    engine = model(stub.base_url)
    deltas: list[str] = []
    written = engine.reply(MESSAGES, 77, collect(deltas))
    assert deltas == WORDS
    assert written.text == "".join(WORDS)
    assert written.finished
    [body] = stub.bodies
    assert body["model"] == "stub-model"
    assert body["max_tokens"] == 77
    assert body["stream"] is True
    assert body["messages"] == [{"role": m.role, "content": m.content} for m in MESSAGES]
    assert stub.authorizations == [f"Bearer {KEY}"]
    assert engine.context_tokens == 4096
    assert engine.languages is None


def test_no_authorization_header_without_a_key(stub: Stub) -> None:
    engine = model(stub.base_url, api_key="")
    assert engine.reply(MESSAGES, 10, lambda piece: False).text == "".join(WORDS)
    assert stub.authorizations == [None]


def test_a_reply_cut_by_max_tokens_is_not_finished(stub: Stub) -> None:
    engine = model(stub.base_url)
    stub.mode = "length"
    written = engine.reply(MESSAGES, 40, lambda piece: False)
    assert written.text == "".join(WORDS)
    assert not written.finished


def test_on_delta_true_stops_reading_and_drops_the_connection(stub: Stub) -> None:
    stub.delay = 0.02
    engine = model(stub.base_url)
    deltas: list[str] = []

    def on_delta(piece: str) -> bool:
        deltas.append(piece)
        return len(deltas) == 3

    written = engine.reply(MESSAGES, 100, on_delta)
    assert written.text == "".join(WORDS[:3])
    assert not written.finished
    assert deltas == WORDS[:3]
    # The server learns on one of its next writes that the client went away.
    assert stub.finished.wait(timeout=3)
    assert stub.disconnected
    assert stub.written < len(WORDS) // 2


def test_unreachable_server_is_unavailable_at_load() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = OpenAiCompatibleModel(f"http://127.0.0.1:{port}/v1", KEY, "stub-model", 4096, 2.0)
    with pytest.raises(ModelUnavailable) as raised:
        engine.load()
    assert KEY not in raised.value.message
    assert KEY not in raised.value.detail


def test_server_error_is_upstream_unavailable_and_keeps_the_key_secret(
    stub: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    engine = model(stub.base_url)
    stub.mode = "500"
    with pytest.raises(UpstreamUnavailable) as raised:
        engine.reply(MESSAGES, 10, lambda piece: False)
    assert "500" in raised.value.message
    assert KEY not in str(raised.value)
    assert KEY not in caplog.text


def test_refused_key_is_model_unavailable(stub: Stub) -> None:
    engine = model(stub.base_url)
    stub.mode = "401"
    with pytest.raises(ModelUnavailable) as raised:
        engine.reply(MESSAGES, 10, lambda piece: False)
    assert "API key" in raised.value.message
    assert KEY not in raised.value.message
    assert KEY not in raised.value.detail


def test_error_event_mid_stream_is_upstream_unavailable(stub: Stub) -> None:
    engine = model(stub.base_url)
    stub.mode = "error_chunk"
    deltas: list[str] = []
    with pytest.raises(UpstreamUnavailable):
        engine.reply(MESSAGES, 10, collect(deltas))
    assert deltas == WORDS[:2]


def test_a_stalled_server_times_out(stub: Stub) -> None:
    engine = model(stub.base_url, timeout=0.3)
    stub.mode = "slow"
    with pytest.raises(UpstreamUnavailable, match="did not answer"):
        engine.reply(MESSAGES, 10, lambda piece: False)


def test_an_unstreamed_answer_is_one_piece(stub: Stub) -> None:
    engine = model(stub.base_url)
    stub.mode = "json"
    deltas: list[str] = []
    written = engine.reply(MESSAGES, 10, collect(deltas))
    assert (written.text, written.finished) == ("whole", True)
    assert deltas == ["whole"]


def test_count_tokens_estimates_high() -> None:
    engine = OpenAiCompatibleModel("http://127.0.0.1:1/v1", "", "m", 4096, 1.0)
    assert engine.count_tokens("") == 1
    # English runs about 4 bytes a token; the estimate takes 3.
    assert engine.count_tokens("The quick brown fox jumps over the lazy dog.") == 15
    assert engine.count_tokens("日本語") == 4  # 9 bytes of UTF-8
