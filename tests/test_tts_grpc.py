"""The TTS service through its generated stub, with the real Piper engine."""

from __future__ import annotations

import asyncio
import threading

import grpc
import pytest

from services.tts.pipeline import FIRST_BLOCK_SECONDS
from services.tts.settings import TtsSettings
from speechmesh.v1 import common_pb2, models_pb2, models_pb2_grpc, tts_pb2, tts_pb2_grpc
from tests.conftest import decode, running_service, wait_serving
from tests.fakes import ScriptedSynthesizer, scripted_registry

pytestmark = pytest.mark.slow

TEXT = "The first sentence is short. The second one follows it. A third closes the text."


async def call(channel, rpc: str, **fields) -> list[tts_pb2.SynthesizeResponse]:
    stub = tts_pb2_grpc.TextToSpeechStub(channel)
    return [m async for m in getattr(stub, rpc)(tts_pb2.SynthesizeRequest(**fields), timeout=60)]


async def rpc_error(channel, rpc: str = "Synthesize", **fields) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(channel, rpc, **fields)
    return caught.value


async def test_list_voices_and_filters(tts_channel) -> None:
    stub = tts_pb2_grpc.TextToSpeechStub(tts_channel)
    voices = (await stub.ListVoices(tts_pb2.ListVoicesRequest())).voices
    joe = next(v for v in voices if v.id == "en_US-joe-medium")
    assert (joe.model, joe.language, joe.locale, joe.gender, joe.sample_rate_hertz) == (
        "piper",
        "en",
        "en-US",
        common_pb2.MALE,
        22050,
    )

    async def ids(**filters) -> set[str]:
        return {voice.id for voice in (await stub.ListVoices(tts_pb2.ListVoicesRequest(**filters))).voices}

    assert {"en_US-joe-medium", "festival-us-slt", "espeak-en-us-m"} <= await ids(language="en-US")
    assert "jf_alpha" not in await ids(language="en-US")  # a locale names the accent
    assert "jf_alpha" in await ids(language="en")  # Kokoro's voices also speak English
    assert await ids(model="piper", gender=common_pb2.MALE) == {"en_US-joe-medium"}
    female = await ids(gender=common_pb2.FEMALE)
    assert {"jf_alpha", "festival-us-slt", "espeak-de-f"} <= female and "jm_kumo" not in female
    assert await ids(language="de") == {"espeak-de-m", "espeak-de-f"}
    assert await ids(language="xx") == set()


@pytest.mark.parametrize(
    ("encoding", "mime"),
    [
        (common_pb2.MP3, "audio/mpeg"),
        (common_pb2.WAV, "audio/wav"),
        (common_pb2.FLAC, "audio/flac"),
        (common_pb2.OGG_VORBIS, "audio/ogg"),
    ],
)
async def test_synthesize_returns_a_complete_file_and_its_result(tts_channel, encoding: int, mime: str) -> None:
    messages = await call(tts_channel, "Synthesize", text=TEXT, output=common_pb2.AudioOutputSpec(encoding=encoding))
    result = messages[-1].result
    audio = b"".join(m.audio_content for m in messages[:-1])
    samples, rate = decode(audio)
    assert (result.audio.mime_type, result.model, result.voice, result.characters) == (
        mime,
        "piper",
        "en_US-joe-medium",
        len(TEXT),
    )
    assert rate == 22050 and result.audio.sample_rate_hertz == 22050
    assert len(samples) / 22050 == pytest.approx(result.audio.duration_ms / 1000, abs=0.15)
    assert 3.0 < len(samples) / 22050 < 10.0
    assert float((samples**2).mean()) ** 0.5 > 0.02, "speech, not silence"


async def test_a_voice_without_its_model_is_spoken_by_its_model(tts_channel) -> None:
    messages = await call(tts_channel, "Synthesize", text="Hello there.", voice="festival-kal")
    assert (messages[-1].result.model, messages[-1].result.voice) == ("festival", "festival-kal")


async def test_stream_sends_audio_sentence_by_sentence(tts_channel) -> None:
    messages = await call(
        tts_channel, "SynthesizeStream", text=TEXT, output=common_pb2.AudioOutputSpec(encoding=common_pb2.WAV)
    )
    audio_messages = [m for m in messages if m.HasField("audio_content")]
    assert len(audio_messages) >= 3, "one message per sentence at least"
    assert messages[-1].HasField("result")
    samples, _ = decode(b"".join(m.audio_content for m in audio_messages))
    assert len(samples) / 22050 > 3.0


async def test_a_stream_sends_its_first_words_before_the_rest_of_the_sentence(tts_channel, monkeypatch) -> None:
    """The first audio of a stream is a few words of a long first sentence, and its first
    block leaves encoded on its own: checked by what was synthesized and sent, not by a clock
    (which two shared cores make flaky)."""
    from services.tts.engines.piper import PiperSynthesizer

    spoken: list[str] = []
    synthesize = PiperSynthesizer.synthesize

    def recorded(self, text, options):
        spoken.append(text)
        yield from synthesize(self, text, options)

    monkeypatch.setattr(PiperSynthesizer, "synthesize", recorded)
    first = "Speech services are judged by how fast they answer the first request of the day."
    messages = await call(
        tts_channel,
        "SynthesizeStream",
        text=f"{first} Then more follows.",
        output=common_pb2.AudioOutputSpec(encoding=common_pb2.WAV),
    )
    # The first sentence is spoken in two pieces: its first words, then the rest of it.
    head = spoken[0]
    assert len(head) <= TtsSettings().stream_first_piece_chars["piper"] and first.startswith(head), spoken
    assert spoken == [head, first[len(head) :].strip(), "Then more follows."]
    audio = [m.audio_content for m in messages if m.HasField("audio_content")]
    samples, rate = decode(audio[0])
    assert 0 < len(samples) / rate <= FIRST_BLOCK_SECONDS + 0.01, "the first message holds the first block only"
    samples, rate = decode(b"".join(audio))
    assert len(samples) / rate > 4.0, "the stream decodes whole"


async def test_speed_changes_duration(tts_channel) -> None:
    durations = {}
    for speed in (0.25, 0.5, 1.0, 2.0, 4.0):
        messages = await call(tts_channel, "Synthesize", text=TEXT, speed=speed)
        durations[speed] = messages[-1].result.audio.duration_ms
    assert durations[0.5] > 2.5 * durations[2.0]
    # Beyond what engines render (0.5-2.0) the audio is time-stretched.
    assert 1.7 < durations[0.25] / durations[0.5] < 2.3
    assert 1.7 < durations[2.0] / durations[4.0] < 2.3


@pytest.mark.parametrize(
    ("fields", "code", "needle"),
    [
        ({"text": "hi", "speed": 0.2}, grpc.StatusCode.INVALID_ARGUMENT, "between 0.25 and 4.0"),
        ({"text": "hi", "speed": 4.5}, grpc.StatusCode.INVALID_ARGUMENT, "between 0.25 and 4.0"),
        ({"text": "  \n "}, grpc.StatusCode.INVALID_ARGUMENT, "empty"),
        ({"text": "x" * 50_001}, grpc.StatusCode.INVALID_ARGUMENT, "50000"),
        (
            {"text": "hi", "output": common_pb2.AudioOutputSpec(sample_rate_hertz=100)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "sample_rate",
        ),
        ({"text": "hi", "language": "de"}, grpc.StatusCode.INVALID_ARGUMENT, "no voice for language"),
        (
            {"text": "hi", "voice": "en_US-joe-medium", "language": "fr"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "speaks en, not 'fr'",
        ),
        ({"text": "hi", "voice": "no_such_voice"}, grpc.StatusCode.NOT_FOUND, "/v1/voices/"),
        ({"text": "hi", "model": "nope"}, grpc.StatusCode.NOT_FOUND, "known models"),
        ({"text": "hi", "model": "chatterbox"}, grpc.StatusCode.FAILED_PRECONDITION, "not available"),
    ],
)
async def test_bad_requests_get_typed_status_codes(tts_channel, fields, code, needle) -> None:
    for rpc in ("Synthesize", "SynthesizeStream"):
        error = await rpc_error(tts_channel, rpc, **fields)
        assert error.code() is code
        assert needle in (error.details() or "")


async def test_model_catalog_reports_ready_and_unavailable_models(tts_channel) -> None:
    reply = await models_pb2_grpc.ModelCatalogStub(tts_channel).ListModels(models_pb2.ListModelsRequest())
    models = {m.id: m for m in reply.models}
    assert models["piper"].state == models_pb2.READY and models["piper"].tier == models_pb2.FREE
    assert models["chatterbox"].state == models_pb2.UNAVAILABLE and models["chatterbox"].supports_cloning
    assert "weights" in models["chatterbox"].unavailable_reason


async def test_a_whole_file_answers_nothing_until_it_is_encoded() -> None:
    """So a replica that dies while it synthesizes has answered nothing, and Envoy or the
    client's retry policy can replay the call elsewhere (they replay only unanswered calls).
    A stream, by contrast, names its voice (the plan) while the engine is still working."""
    release, hold = threading.Event(), threading.Event()
    release.set()
    engine = ScriptedSynthesizer(release, hold=hold)
    async with running_service(scripted_registry(engine)) as port:
        await wait_serving(port)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = tts_pb2_grpc.TextToSpeechStub(channel)
            streamed = aiter(stub.SynthesizeStream(tts_pb2.SynthesizeRequest(text="hi"), timeout=30))
            assert (await asyncio.wait_for(anext(streamed), 30)).HasField("plan")  # the engine is held
            assert await asyncio.to_thread(engine.entered.wait, 30)
            whole = aiter(stub.Synthesize(tts_pb2.SynthesizeRequest(text="hi"), timeout=30))
            first = asyncio.ensure_future(anext(whole))
            # Held in the engine: the stream's plan came within this second; the whole file's does not.
            done, _ = await asyncio.wait({first}, timeout=1.0)
            assert not done
            hold.set()
            assert (await first).HasField("plan")
            rest = [message async for message in whole]
            assert rest[0].HasField("audio_content") and rest[-1].HasField("result")
            async for _ in streamed:
                pass
