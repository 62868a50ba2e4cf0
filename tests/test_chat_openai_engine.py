"""The OpenAI-compatible language model against a real HTTP server on loopback (the stub of
tests/llm_stub.py, which sees what the engine sends and when it goes away)."""

from __future__ import annotations

import socket

import pytest

from services.chat.engines.openai_compatible import OpenAiCompatibleModel
from services.chat.processors import Message, OnDelta
from speechmesh.common.errors import ModelUnavailable, UpstreamUnavailable
from tests.llm_stub import KEY, WORDS, Stub


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
