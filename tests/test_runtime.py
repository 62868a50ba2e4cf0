"""The shared service runtime, on real grpc.aio servers bound to loopback port 0."""

from __future__ import annotations

import asyncio
import gc
import threading

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY

from services.tts.server import create_server
from services.tts.settings import TtsSettings
from speechmesh.runtime.server import stop_server
from speechmesh.v1 import tts_pb2, tts_pb2_grpc
from tests.conftest import running_service, wait_serving
from tests.fakes import ScriptedSynthesizer, scripted_registry

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def health(port: int, service: str = "") -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
        return reply.status


async def synthesize(port: int, text: str = "hi") -> list[tts_pb2.SynthesizeResponse]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        return [
            m
            async for m in tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(
                tts_pb2.SynthesizeRequest(text=text), timeout=10
            )
        ]


async def test_health_is_not_serving_while_models_load_then_serving() -> None:
    release = threading.Event()
    async with running_service(scripted_registry(ScriptedSynthesizer(release))) as port:
        assert await health(port) == NOT_SERVING
        assert await health(port, "speechmesh.v1.TextToSpeech") == NOT_SERVING
        try:
            await synthesize(port)
            raise AssertionError("a call during load must fail")
        except grpc.aio.AioRpcError as error:
            assert error.code() is grpc.StatusCode.UNAVAILABLE
            assert "loading" in (error.details() or "")
        release.set()
        await wait_serving(port)
        assert await health(port, "speechmesh.v1.TextToSpeech") == SERVING
        assert len(await synthesize(port)) >= 2


async def test_a_slow_engine_call_does_not_block_health_or_other_calls() -> None:
    release = threading.Event()
    release.set()
    hold = threading.Event()
    engine = ScriptedSynthesizer(release, hold=hold)
    async with running_service(scripted_registry(engine), workers=2) as port:
        await wait_serving(port)
        slow = asyncio.create_task(synthesize(port))
        try:
            assert await asyncio.to_thread(engine.entered.wait, 30)
            # The engine call is held until health has answered: health cannot wait for it.
            assert await health(port) == SERVING
            assert not slow.done()
        finally:
            hold.set()
        await slow


async def test_unexpected_engine_errors_become_internal_without_details() -> None:
    release = threading.Event()
    release.set()
    engine = ScriptedSynthesizer(release, error=RuntimeError("secret stack detail"))
    async with running_service(scripted_registry(engine)) as port:
        await wait_serving(port)
        try:
            await synthesize(port)
            raise AssertionError("expected INTERNAL")
        except grpc.aio.AioRpcError as error:
            assert error.code() is grpc.StatusCode.INTERNAL
            assert "secret" not in (error.details() or "")
    assert (
        REGISTRY.get_sample_value(
            "speechmesh_rpc_total", {"service": "tts", "method": "Synthesize", "code": "INTERNAL"}
        )
        >= 1
    )


async def test_graceful_shutdown_drains_health_first() -> None:
    release = threading.Event()
    release.set()
    settings = TtsSettings(port=0, workers=1, log_json=False)
    engine = ScriptedSynthesizer(release, synth_seconds=0.5)
    server, port = await create_server(settings, scripted_registry(engine))
    await wait_serving(port)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        updates = aiter(watch)
        assert (await anext(updates)).status == SERVING
        in_flight = asyncio.create_task(_collect(channel))
        assert await asyncio.to_thread(engine.entered.wait, 30)
        stopping = asyncio.create_task(stop_server(server, grace=5))
        assert (await asyncio.wait_for(anext(updates), 2)).status == NOT_SERVING
        assert len(await in_flight) >= 2, "an in-flight call finishes within the grace period"
        watch.cancel()
        await stopping


async def _collect(channel: grpc.aio.Channel) -> list[tts_pb2.SynthesizeResponse]:
    stub = tts_pb2_grpc.TextToSpeechStub(channel)
    return [m async for m in stub.Synthesize(tts_pb2.SynthesizeRequest(text="hi"), timeout=10)]


async def test_a_cancelled_stream_stops_synthesis_cleanly() -> None:
    release = threading.Event()
    release.set()
    engine = ScriptedSynthesizer(release, synth_seconds=0.2, blocks=20)
    internal = {"service": "tts", "method": "SynthesizeStream", "code": "INTERNAL"}
    internal_before = REGISTRY.get_sample_value("speechmesh_rpc_total", internal) or 0
    async with running_service(scripted_registry(engine)) as port:
        await wait_serving(port)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = tts_pb2_grpc.TextToSpeechStub(channel)
            call = stub.SynthesizeStream(tts_pb2.SynthesizeRequest(text="hi", output={"encoding": "WAV"}))
            messages = aiter(call)
            assert (await anext(messages)).HasField("plan")
            # Audio has come: the engine is mid-synthesis (a generator closed before it
            # started would never run its `finally`, and `ended` would say nothing).
            assert (await anext(messages)).HasField("audio_content")
            call.cancel()
        # Its 20 blocks take 4 s; closed after the one in progress, the call ends sooner.
        assert await asyncio.to_thread(engine.ended.wait, 30)
        assert engine.produced <= 3, "synthesis stops soon after the client leaves"
        engine.synth_seconds = 0.0  # what follows only needs an answer
        assert await health(port) == SERVING
        assert len(await synthesize(port)) >= 2
    assert (REGISTRY.get_sample_value("speechmesh_rpc_total", internal) or 0) == internal_before
    cancelled = {"service": "tts", "method": "SynthesizeStream", "code": "CANCELLED"}
    assert REGISTRY.get_sample_value("speechmesh_rpc_total", cancelled) >= 1


async def test_reflection_lists_the_services(tts_port: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{tts_port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        reply = await anext(aiter(stub.ServerReflectionInfo(iter([request]))))
    names = {service.name for service in reply.list_services_response.service}
    assert {"speechmesh.v1.TextToSpeech", "speechmesh.v1.ModelCatalog", "grpc.health.v1.Health"} <= names


async def test_a_stream_cancelled_while_its_reply_waits_to_be_sent_stops_at_once() -> None:
    # A client that stops reading fills the stream's flow-control window, so the service
    # waits inside grpc's write when the cancel comes. grpc.aio then abandons a generator
    # handler at its `yield`, and only the garbage collector would close it: with the
    # collector off, the engine would run on until it finished.
    release = threading.Event()
    release.set()
    engine = ScriptedSynthesizer(release, blocks=100_000)
    cancelled = {"service": "tts", "method": "SynthesizeStream", "code": "CANCELLED"}
    before = REGISTRY.get_sample_value("speechmesh_rpc_total", cancelled) or 0
    gc.disable()
    try:
        async with running_service(scripted_registry(engine)) as port:
            await wait_serving(port)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = tts_pb2_grpc.TextToSpeechStub(channel)
                call = stub.SynthesizeStream(tts_pb2.SynthesizeRequest(text="hi", output={"encoding": "WAV"}))
                messages = aiter(call)
                assert (await anext(messages)).HasField("plan")
                assert (await anext(messages)).HasField("audio_content")
                # Not read any further: the window fills and the service's write waits.
                produced = -1
                while produced != engine.produced:
                    produced = engine.produced
                    await asyncio.sleep(0.2)
                call.cancel()
            assert await asyncio.to_thread(engine.ended.wait, 10), "the engine ran on for a client who left"
            assert engine.produced < 100_000
            assert (REGISTRY.get_sample_value("speechmesh_rpc_total", cancelled) or 0) == before + 1
    finally:
        gc.enable()
