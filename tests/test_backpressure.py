"""Backpressure: a model's work is bounded (running + queued), callers beyond the bound are
refused at once with a retry delay, a caller who leaves the queue frees its place, and health
answers while the model is saturated. Real TTS service (Piper) on loopback, and the gateway."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from prometheus_client import REGISTRY

from services.tts.registry import build_engines as build_tts_engines
from services.tts.settings import TtsSettings
from speechmesh.runtime.status import error_info
from speechmesh.v1 import common_pb2, tts_pb2, tts_pb2_grpc
from tests.conftest import TEST_PIPER, running_gateway, serving

# Minutes of speech: a stream of it holds its turn as long as its caller does not read.
LONG_TEXT = " ".join(["The quick brown fox jumps over the lazy dog, and then it runs far away."] * 60)
WAV = common_pb2.AudioOutputSpec(encoding=common_pb2.WAV)


@pytest_asyncio.fixture(scope="module")
async def narrow_tts() -> AsyncIterator[int]:
    """Piper alone, one call at a time and one waiting."""
    from services.tts.server import create_server

    settings = TtsSettings(
        port=0, workers=2, log_json=False, piper=TEST_PIPER, engines=["piper"], max_in_flight=1, max_queued=1
    )
    async with serving(create_server(settings, build_tts_engines(settings))) as port:
        yield port


def _queued() -> float:
    return REGISTRY.get_sample_value("speechmesh_queue_depth", {"service": "tts", "model": "piper"}) or 0.0


async def _until(condition, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def _running(stub: tts_pb2_grpc.TextToSpeechStub) -> AsyncIterator[None]:
    """A stream admitted and holding its turn (its caller reads only the first message)."""
    call = stub.SynthesizeStream(tts_pb2.SynthesizeRequest(text=LONG_TEXT, model="piper", output=WAV))
    try:
        first = await call.read()
        assert first.HasField("plan")
        yield
    finally:
        call.cancel()


async def test_a_full_queue_refuses_at_once_and_a_caller_who_leaves_frees_its_place(narrow_tts: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{narrow_tts}") as channel:
        stub = tts_pb2_grpc.TextToSpeechStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        short = tts_pb2.SynthesizeRequest(text="Hello there.", model="piper", output=WAV)
        async with _running(stub):
            waiting = asyncio.create_task(_collect(stub.Synthesize(short)))
            await _until(lambda: _queued() == 1)

            # Health answers while the model is saturated.
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _collect(stub.Synthesize(short), timeout=2)
            error = refused.value
            assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            info = error_info(rpc_status.from_call(error))  # type: ignore[arg-type]
            assert info is not None and info.reason == "OVERLOADED"
            assert info.metadata["model"] == "piper"
            assert int(info.metadata["retry_after_seconds"]) >= 1

            # The waiting caller leaves: its place is free for the next one.
            waiting.cancel()
            await _until(lambda: _queued() == 0)
            replacement = asyncio.create_task(_collect(stub.Synthesize(short)))
            await _until(lambda: _queued() == 1)
        # The running stream ended: the queued call gets its turn and completes.
        replies = await replacement
        assert replies[-1].result.audio.duration_ms > 300


async def _collect(call, timeout: float = 60) -> list[tts_pb2.SynthesizeResponse]:
    async with asyncio.timeout(timeout):
        return [reply async for reply in call]


async def test_the_gateway_answers_503_with_retry_after_from_the_queue(narrow_tts: int, tmp_path: Path) -> None:
    async with (
        running_gateway(f"127.0.0.1:{narrow_tts}", tmp_path / "gateway.db") as gateway,
        grpc.aio.insecure_channel(f"127.0.0.1:{narrow_tts}") as channel,
    ):
        stub = tts_pb2_grpc.TextToSpeechStub(channel)
        async with gateway.client(await gateway.key("internal")) as http:
            body = {"model": "piper", "text": "Hello there.", "format": "wav"}
            async with _running(stub):
                waiting = asyncio.create_task(http.post("/v1/tts/", json=body))
                await _until(lambda: _queued() == 1)
                response = await http.post("/v1/tts/", json=body)
                assert response.status_code == 503
                error = response.json()["error"]
                assert error["code"] == "model_loading"
                assert error["reason"] == "overloaded"
                assert error["model"] == "piper"
                assert "retry_after_seconds" not in error
                assert int(response.headers["Retry-After"]) >= 1
                assert response.headers["X-Credits-Used"] == "0"
            # The queued request is served once the stream has ended.
            served = await waiting
            assert served.status_code == 200
            assert served.headers["content-type"] == "audio/wav"
