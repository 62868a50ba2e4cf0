"""speechmesh.client's gRPC clients against the real services on loopback: speech made and
heard back, live recognition, typed results, errors as the REST client's classes, deadlines,
and idempotent calls replayed by the channel when a replica answers UNAVAILABLE.
The sync client runs in a thread: the services serve on this loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from speechmesh.client import (
    ApiError,
    AsyncGrpcClient,
    BadRequestError,
    DeadlineExceededError,
    FileTooLargeError,
    GrpcClient,
    ModelLoadingError,
    NotFoundError,
)
from speechmesh.clients.config import ClientConfig, ServiceTarget
from speechmesh.common import errors
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.audio.pcm import Pcm
from speechmesh.runtime.status import status_code_for, to_grpc_status
from speechmesh.v1 import tts_pb2, tts_pb2_grpc
from tests.conftest import decode, transcribe, word_error_rate
from tests.test_clients import FlakyVoices, voices_server
from tests.test_gateway_audio import _song

TEXT = "The quick brown fox jumps over the lazy dog."
TWO_SENTENCES = "Please call Stella and ask her to bring these things. She can meet us at the train station."
# Long enough that no machine synthesizes it within the deadline below.
LONG_TEXT = " ".join(["This sentence is here to take the synthesizer a while to speak."] * 40)


@pytest.fixture
async def client(tts_port: int, stt_port: int, audio_port: int) -> AsyncIterator[AsyncGrpcClient]:
    async with AsyncGrpcClient(
        tts=f"127.0.0.1:{tts_port}", stt=f"127.0.0.1:{stt_port}", audio=f"127.0.0.1:{audio_port}"
    ) as opened:
        yield opened


@pytest.mark.slow
async def test_speech_made_and_heard_back(client: AsyncGrpcClient, whisper) -> None:
    audio = await client.synthesize(TEXT, model="piper", format="wav", timeout=60)
    assert audio[:4] == b"RIFF" and word_error_rate(TEXT, transcribe(whisper, audio)) <= 0.2
    heard = await client.transcribe(audio, model="faster-whisper", language="en", timestamps=True, timeout=60)
    assert word_error_rate(TEXT, heard.text) <= 0.2, heard.text
    assert heard.language == "en" and heard.duration == pytest.approx(len(decode(audio)[0]) / 22050, abs=0.05)
    assert heard.words and all(segment.speaker is None for segment in heard.segments)

    pieces = [piece async for piece in client.stream_synthesis(TWO_SENTENCES, model="piper", format="mp3")]
    assert len(pieces) > 1
    assert word_error_rate(TWO_SENTENCES, transcribe(whisper, b"".join(pieces))) <= 0.2


@pytest.mark.slow
async def test_live_recognition_yields_interim_then_final_results(client: AsyncGrpcClient, speak) -> None:
    pcm = speak(TEXT)
    silence = np.zeros(pcm.sample_rate, np.float32)
    raw = Pcm(np.concatenate([silence[: pcm.sample_rate // 2], pcm.samples, silence]), pcm.sample_rate).to_int16()
    data = raw.astype("<i2").tobytes()

    async def arriving() -> AsyncIterator[bytes]:
        piece = pcm.sample_rate // 10 * 2  # 100 ms
        for start in range(0, len(data), piece):
            yield data[start : start + piece]

    results = [
        result
        async for result in client.live_recognition(
            arriving(), sample_rate=pcm.sample_rate, model="faster-whisper", language="en", timeout=120
        )
    ]
    finals = [result for result in results if result.is_final]
    assert len(finals) == 1 and word_error_rate(TEXT, finals[0].text) <= 0.25, finals
    assert not results[0].is_final  # interim results came first
    assert 0.2 <= finals[0].start < finals[0].end <= len(raw) / pcm.sample_rate + 0.05


@pytest.mark.slow
async def test_models_voices_and_the_audio_tools(client: AsyncGrpcClient) -> None:
    models = {model.id: model for model in await client.models()}
    piper = models["piper"]
    assert (piper.type, piper.tier, piper.status, piper.credits_per_1k_chars) == ("tts", "free", "ready", None)
    assert models["faster-whisper"].type == "stt"
    voices = await client.voices(model="piper")
    assert [(v.id, v.language, v.gender, v.preview_url) for v in voices] == [("en_US-joe-medium", "en", "male", None)]

    song = encode_audio(Pcm(_song(261.63, 120), 22_050), FORMATS["mp3"])
    found = await client.analyze(song)
    assert (found.key, found.scale, found.camelot) == ("C", "Major", "8B")
    assert found.bpm == pytest.approx(120, rel=0.02)
    flac = await client.convert(song, "flac", sample_rate=44100)
    samples, rate = decode(flac)
    assert flac[:4] == b"fLaC" and rate == 44100 and len(samples) / rate == pytest.approx(12.0, abs=0.1)


@pytest.mark.slow
async def test_errors_are_the_rest_clients_classes(client: AsyncGrpcClient) -> None:
    with pytest.raises(NotFoundError) as unknown:
        await client.synthesize("Hello.", voice="no-such-voice")
    assert (unknown.value.status, unknown.value.code) == (404, "not_found")
    assert "no-such-voice" in unknown.value.message

    with pytest.raises(BadRequestError) as too_long:
        await client.synthesize("a" * 50_001)  # the service's own limit
    assert (too_long.value.status, too_long.value.code) == (400, "bad_request")

    with pytest.raises(BadRequestError) as bad_format:
        await client.synthesize("Hello.", format="midi")
    assert bad_format.value.param == "format"

    with pytest.raises(NotFoundError):  # a stream's error arrives at its first piece
        async for _ in client.stream_synthesis("Hello.", model="no-such-model"):
            pass

    with pytest.raises(BadRequestError) as not_audio:
        await client.transcribe(b"this is not audio at all" * 100, timeout=60)
    assert not_audio.value.status == 400


@pytest.mark.slow
async def test_a_call_past_its_deadline_raises_timeout(client: AsyncGrpcClient) -> None:
    with pytest.raises(DeadlineExceededError) as late:
        await client.synthesize(LONG_TEXT, model="piper", timeout=0.2)
    assert (late.value.status, late.value.code) == (504, "timeout")
    # The channel is fine afterwards.
    assert (await client.synthesize("Still here.", model="piper", format="wav"))[:4] == b"RIFF"


async def test_unavailable_is_replayed_for_idempotent_calls() -> None:
    """A replica that answers UNAVAILABLE twice (restarting) is survived: the channel's retry
    policy replays the listing; with no retries the caller gets the typed 503."""
    servicer = FlakyVoices(failures=2)
    async with voices_server(servicer) as port, AsyncGrpcClient(tts=f"127.0.0.1:{port}") as client:
        assert [voice.id for voice in await client.voices()] == ["v"]
    assert servicer.calls == 3

    servicer = FlakyVoices(failures=2)
    async with voices_server(servicer) as port:
        config = ClientConfig(tts=ServiceTarget(address=f"127.0.0.1:{port}"), retry_attempts=1)
        async with AsyncGrpcClient(config=config) as client:
            with pytest.raises(ModelLoadingError) as refused:
                await client.voices()
    assert (refused.value.status, refused.value.code, servicer.calls) == (503, "model_loading", 1)


class Refusing(tts_pb2_grpc.TextToSpeechServicer):
    """Refuses every listing with `error` as a speechmesh service sends it (status + ErrorInfo)."""

    def __init__(self, error: errors.SpeechmeshError) -> None:
        self.error = error

    async def ListVoices(self, request: tts_pb2.ListVoicesRequest, context: grpc.aio.ServicerContext) -> object:
        error = self.error
        await context.abort_with_status(
            to_grpc_status(status_code_for(error), error.message, error.reason, error.fields)
        )


@pytest.mark.parametrize(
    ("error", "expected", "fields", "retry_after"),
    [
        # RESOURCE_EXHAUSTED both, told apart by their reason.
        (errors.AudioTooLong(7200), FileTooLargeError, {"max_seconds": "7200"}, None),
        (errors.Overloaded("piper", 4), ModelLoadingError, {"model": "piper"}, 4),
        (errors.ModelUnavailable("No weights here.", model="xtts"), NotFoundError, {"model": "xtts"}, None),
        (errors.InvalidAudio("Not audio.", param="file"), BadRequestError, {"param": "file"}, None),
    ],
)
async def test_a_services_refusal_keeps_its_reason_and_fields(
    error: errors.SpeechmeshError, expected: type[ApiError], fields: dict[str, str], retry_after: int | None
) -> None:
    async with voices_server(Refusing(error)) as port, AsyncGrpcClient(tts=f"127.0.0.1:{port}") as client:
        with pytest.raises(expected) as refused:
            await client.voices()
    assert (refused.value.message, refused.value.fields, refused.value.retry_after) == (
        error.message,
        fields,
        retry_after,
    )


async def test_the_sync_client_survives_the_same_restart() -> None:
    servicer = FlakyVoices(failures=2)
    async with voices_server(servicer) as port:

        def use() -> list[str]:
            with GrpcClient(tts=f"127.0.0.1:{port}") as client:
                return [voice.id for voice in client.voices()]

        assert await asyncio.to_thread(use) == ["v"]
    assert servicer.calls == 3


@pytest.mark.slow
async def test_the_sync_client_speaks_hears_and_fails_typed(
    tts_port: int, stt_port: int, whisper, tmp_path: Path
) -> None:
    def use() -> tuple[bytes, bytes, str, NotFoundError]:
        with GrpcClient(tts=f"127.0.0.1:{tts_port}", stt=f"127.0.0.1:{stt_port}") as client:
            whole = client.synthesize(TEXT, model="piper", format="flac", timeout=60)
            stream = client.stream_synthesis(TWO_SENTENCES, model="piper", format="wav")
            first = next(stream)
            stream.close()  # leaving early cancels the synthesis on the client's loop
            path = tmp_path / "fox.flac"
            path.write_bytes(whole)
            heard = client.transcribe(path, model="faster-whisper", language="en")
            with pytest.raises(NotFoundError) as unknown:
                client.synthesize("Hello.", voice="no-such-voice")
            return whole, first, heard.text, unknown.value

    whole, first, heard, unknown = await asyncio.to_thread(use)
    assert whole[:4] == b"fLaC" and word_error_rate(TEXT, transcribe(whisper, whole)) <= 0.2
    assert first[:4] == b"RIFF"
    assert word_error_rate(TEXT, heard) <= 0.2, heard
    assert (unknown.status, unknown.code) == (404, "not_found")
