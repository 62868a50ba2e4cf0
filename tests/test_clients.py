"""speechmesh/clients against real services on loopback: a test client calls TTS and STT only
through the client layer, as the chat service will; idempotent calls are retried through
gRPC's service config; calls are spread over replicas; a trace crosses the hop."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.background import serve_in_background
from gateway.settings import GatewaySettings
from services.tts.server import create_server as create_tts_server
from services.tts.settings import TtsSettings
from speechmesh.clients.config import ClientConfig, ServiceTarget
from speechmesh.clients.mesh import Mesh
from speechmesh.runtime.server import stop_server
from speechmesh.v1 import audio_pb2, audio_pb2_grpc, common_pb2, stt_pb2, tts_pb2, tts_pb2_grpc
from tests.conftest import wait_serving, word_error_rate
from tests.fakes import ScriptedSynthesizer, scripted_registry

TEXT = "The quick brown fox jumps over the lazy dog."


@contextlib.asynccontextmanager
async def mesh(**targets: ServiceTarget | None) -> AsyncIterator[Mesh]:
    opened = Mesh(ClientConfig(**targets))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.mark.slow
async def test_a_client_speaks_and_hears_through_the_client_layer(tts_port: int, stt_port: int) -> None:
    async with mesh(
        tts=ServiceTarget(address=f"127.0.0.1:{tts_port}"), stt=ServiceTarget(address=f"127.0.0.1:{stt_port}")
    ) as services:
        assert services.tts is not None and services.stt is not None
        request = tts_pb2.SynthesizeRequest(
            text=TEXT, model="piper", output=common_pb2.AudioOutputSpec(encoding=common_pb2.WAV)
        )
        audio, result = await services.tts.synthesize(request)
        assert result.model == "piper" and result.audio.duration_ms > 1000
        reply = await services.stt.recognize(
            stt_pb2.RecognitionConfig(model="faster-whisper", language="en", vad_filter=False), audio
        )
        assert word_error_rate(TEXT, reply.text) <= 0.2, reply.text

        plan, chunks = await services.tts.stream(request)
        assert plan.model == "piper" and plan.voice
        streamed = b"".join([chunk async for chunk in chunks])
        assert streamed[:4] == b"RIFF" and len(streamed) > 10_000


class FlakyVoices(tts_pb2_grpc.TextToSpeechServicer):
    """Fails the first `failures` ListVoices calls as UNAVAILABLE, then lists one voice."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def ListVoices(self, request: tts_pb2.ListVoicesRequest, context: grpc.aio.ServicerContext) -> object:
        self.calls += 1
        if self.calls <= self.failures:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
        return tts_pb2.ListVoicesResponse(voices=[tts_pb2.Voice(id="v", model="fake")])


@contextlib.asynccontextmanager
async def voices_server(servicer: FlakyVoices) -> AsyncIterator[int]:
    server = grpc.aio.server()
    tts_pb2_grpc.add_TextToSpeechServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port
    finally:
        await server.stop(0)


@pytest.mark.parametrize(("attempts", "succeeds"), [(3, True), (1, False)])
async def test_an_idempotent_call_is_retried_by_the_channel(attempts: int, succeeds: bool) -> None:
    servicer = FlakyVoices(failures=2)
    async with voices_server(servicer) as port:
        opened = Mesh(ClientConfig(tts=ServiceTarget(address=f"127.0.0.1:{port}"), retry_attempts=attempts))
        try:
            assert opened.tts is not None
            if succeeds:
                assert [v.id for v in await opened.tts.voices(tts_pb2.ListVoicesRequest())] == ["v"]
            else:
                with pytest.raises(grpc.aio.AioRpcError) as failed:
                    await opened.tts.voices(tts_pb2.ListVoicesRequest())
                assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            await opened.close()
    assert servicer.calls == (3 if succeeds else 1)


async def test_calls_are_spread_over_every_replica() -> None:
    replicas = [FlakyVoices(failures=0), FlakyVoices(failures=0)]
    async with voices_server(replicas[0]) as first, voices_server(replicas[1]) as second:
        # What a DNS name of a headless Service resolves to: one address per pod.
        services = Mesh(ClientConfig(tts=ServiceTarget(address=f"ipv4:127.0.0.1:{first},127.0.0.1:{second}")))
        try:
            assert services.tts is not None
            for _ in range(20):
                await services.tts.voices(tts_pb2.ListVoicesRequest())
        finally:
            await services.close()
    # Alternating once both connections are up (pick-first would give 20 and 0).
    assert sum(replica.calls for replica in replicas) == 20 and min(replica.calls for replica in replicas) >= 5


@contextlib.asynccontextmanager
async def traced_tts(provider: TracerProvider) -> AsyncIterator[int]:
    release = threading.Event()
    release.set()
    settings = TtsSettings(port=0, workers=1, log_json=False)
    server, port = await create_tts_server(settings, scripted_registry(ScriptedSynthesizer(release)), provider)
    try:
        await wait_serving(port)
        yield port
    finally:
        await stop_server(server, grace=0)


def _spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


async def test_the_service_span_is_the_child_of_the_callers() -> None:
    provider, exporter = _spans()
    async with traced_tts(provider) as port:
        opened = Mesh(ClientConfig(tts=ServiceTarget(address=f"127.0.0.1:{port}")), provider)
        try:
            assert opened.tts is not None
            with provider.get_tracer("test").start_as_current_span("caller") as caller:
                await opened.tts.voices(tts_pb2.ListVoicesRequest())
        finally:
            await opened.close()
    spans = exporter.get_finished_spans()
    [client] = [s for s in spans if s.kind == trace.SpanKind.CLIENT and s.name.endswith("/ListVoices")]
    [served] = [s for s in spans if s.kind == trace.SpanKind.SERVER and s.name.endswith("/ListVoices")]
    assert client.parent is not None and client.parent.span_id == caller.get_span_context().span_id
    assert served.parent is not None and served.parent.span_id == client.context.span_id
    assert served.context.trace_id == caller.get_span_context().trace_id


async def test_a_trace_started_at_the_gateway_reaches_the_service(tmp_path) -> None:
    provider, exporter = _spans()
    async with traced_tts(provider) as port:
        settings = GatewaySettings(
            tts_address=f"127.0.0.1:{port}", stt_address="127.0.0.1:9", database_path=tmp_path / "db", log_json=False
        )
        async with serve_in_background(settings, provider) as base_url:
            from gateway.store.stores import open_stores

            stores = await open_stores(settings)
            created, key = await stores.keys.create("trace", "pro")
            await stores.credits.grant(created.id, 100, "test")
            await stores.close()
            async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"}) as http:
                reply = await http.post("/v1/tts/", json={"text": "hello", "format": "wav"})
                assert reply.status_code == 200, reply.text
    spans = exporter.get_finished_spans()
    [http_span] = [s for s in spans if s.kind == trace.SpanKind.SERVER and s.name.startswith("POST")]
    [client] = [s for s in spans if s.kind == trace.SpanKind.CLIENT and s.name.endswith("/Synthesize")]
    [served] = [s for s in spans if s.kind == trace.SpanKind.SERVER and s.name.endswith("/Synthesize")]
    assert client.parent is not None and client.parent.span_id == http_span.context.span_id
    assert served.parent is not None and served.parent.span_id == client.context.span_id
    assert len({http_span.context.trace_id, client.context.trace_id, served.context.trace_id}) == 1


def test_every_method_named_idempotent_exists_in_its_contract() -> None:
    from google.protobuf import descriptor_pool

    from speechmesh.clients import audio, chat, stt, tts

    for module in (tts, stt, audio, chat):
        for service, method in module.IDEMPOTENT:
            found = descriptor_pool.Default().FindServiceByName(service)
            assert found.methods_by_name.get(method) is not None, (service, method)


class EchoAudio(audio_pb2_grpc.AudioServicer):
    """Answers what it was sent: the config first, then the audio chunks in order."""

    async def Enhance(self, requests, context):
        first = await anext(requests)
        assert first.HasField("config")
        yield common_pb2.AudioResponse(audio_content=first.config.SerializeToString())
        async for request in requests:
            yield common_pb2.AudioResponse(audio_content=request.audio_content)

    async def Analyze(self, requests, context):
        assert (await anext(requests)).HasField("config")
        received = [request.audio_content async for request in requests]
        return audio_pb2.AnalyzeResponse(bpm=len(received), key=str(sum(map(len, received))))


async def test_the_audio_client_sends_the_config_then_the_audio_in_chunks() -> None:
    server = grpc.aio.server()
    audio_pb2_grpc.add_AudioServicer_to_server(EchoAudio(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with mesh(audio=ServiceTarget(address=f"127.0.0.1:{port}")) as services:
            assert services.audio is not None
            data = bytes(range(256)) * 10_000  # 2.5 MiB: three 1 MiB chunks
            analysis = await services.audio.analyze(audio_pb2.AnalyzeConfig(), data)
            assert (analysis.bpm, analysis.key) == (3, str(len(data)))
            config = audio_pb2.EnhanceConfig(strength=3)
            replies = [reply.audio_content async for reply in services.audio.enhance(config, [b"ab", b"cd"])]
            assert replies == [config.SerializeToString(), b"ab", b"cd"]
    finally:
        await server.stop(0)
