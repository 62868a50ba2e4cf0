"""speechmesh.client's REST clients against the real gateway over real services: speech made
and heard back, typed results, the usage headers, and every error as its typed class with
the documented code. The sync client runs in a thread: the gateway serves on this loop."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from speechmesh.client import (
    AsyncRestClient,
    BadRequestError,
    FileTooLargeError,
    ForbiddenError,
    InsufficientCreditsError,
    NotFoundError,
    RestClient,
    UnauthorizedError,
)
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.audio.pcm import Pcm
from tests.conftest import Gateway, decode, transcribe, word_error_rate
from tests.test_gateway_audio import _song

pytestmark = pytest.mark.slow

TEXT = "The quick brown fox jumps over the lazy dog."
TWO_SENTENCES = "Please call Stella and ask her to bring these things. She can meet us at the train station."


def test_the_client_imports_neither_the_gateway_nor_a_service() -> None:
    """Checked in a fresh interpreter, since this one has imported everything."""
    banned = ("gateway", "services", "fastapi", "starlette", "uvicorn")
    script = f"import sys, speechmesh.client; print(' '.join(m for m in sys.modules if m.split('.')[0] in {banned}))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.split() == []


async def test_speech_made_and_heard_back_with_usage(gateway: Gateway, whisper) -> None:
    async with AsyncRestClient(gateway.base_url, await gateway.key("pro", credits=100)) as client:
        audio = await client.synthesize(TEXT, model="piper", format="wav")
        assert audio[:4] == b"RIFF"
        assert word_error_rate(TEXT, transcribe(whisper, audio)) <= 0.2
        # 44 characters of a free-tier model: 1 credit, from a balance of 100; a Pro key's minute.
        usage = client.last_usage
        assert usage is not None and (usage.credits_used, usage.credits_remaining) == (1, 99)
        assert usage.rate_limit_limit == 60 and usage.rate_limit_remaining == 59 and usage.rate_limit_reset

        heard = await client.transcribe(audio, model="faster-whisper", language="en", timestamps=True)
        assert word_error_rate(TEXT, heard.text) <= 0.2, heard.text
        assert heard.language == "en" and heard.duration == pytest.approx(len(decode(audio)[0]) / 22050, abs=0.05)
        assert heard.segments and all(segment.speaker is None for segment in heard.segments)
        assert heard.words is not None and [w.start for w in heard.words] == sorted(w.start for w in heard.words)
        assert client.last_usage is not None and client.last_usage.credits_used == 2  # a started minute of STT


async def test_streamed_synthesis_arrives_in_pieces_that_make_one_file(gateway: Gateway, whisper) -> None:
    async with AsyncRestClient(gateway.base_url, await gateway.key()) as client:
        pieces = [piece async for piece in client.stream_synthesis(TWO_SENTENCES, model="piper", format="mp3")]
    assert len(pieces) > 1
    assert word_error_rate(TWO_SENTENCES, transcribe(whisper, b"".join(pieces))) <= 0.2


async def test_the_sync_client_does_the_same(gateway: Gateway, whisper, tmp_path: Path) -> None:
    key = await gateway.key()

    def use() -> tuple[bytes, bytes, str, list[str], list[str], list[str]]:
        with RestClient(f"{gateway.base_url}/v1/", key) as client:  # the seed page's base URL works too
            whole = client.synthesize(TEXT, model="piper", format="flac")
            streamed = b"".join(client.stream_synthesis(TWO_SENTENCES, model="piper", format="wav"))
            path = tmp_path / "fox.flac"
            path.write_bytes(whole)
            heard = client.transcribe(path, model="faster-whisper", language="en")  # a path: uploaded from disk
            models = [model.id for model in client.models() if model.type == "tts" and model.status == "ready"]
            voices = client.voices(model="piper", language="en")
            return whole, streamed, heard.text, models, [v.id for v in voices], [v.preview_url or "" for v in voices]

    whole, streamed, heard, models, voices, previews = await asyncio.to_thread(use)
    assert whole[:4] == b"fLaC" and word_error_rate(TEXT, heard) <= 0.2, heard
    assert word_error_rate(TWO_SENTENCES, transcribe(whisper, streamed)) <= 0.2
    assert "piper" in models
    assert voices == ["en_US-joe-medium"] and "/v1/voices/preview/en_US-joe-medium.mp3?" in previews[0]


async def test_models_and_voices_are_typed(gateway: Gateway) -> None:
    async with AsyncRestClient(gateway.base_url, await gateway.key()) as client:
        models = {model.id: model for model in await client.models()}
        voices = await client.voices(model="kokoro")
    piper = models["piper"]
    assert (piper.type, piper.tier, piper.status, piper.credits_per_1k_chars) == ("tts", "free", "ready", 1)
    assert "en" in piper.languages and piper.supports_streaming
    assert voices and {voice.model for voice in voices} == {"kokoro"}
    assert {voice.gender for voice in voices} <= {"male", "female", "neutral"}
    # The hosted API's Kokoro ids stand for installed voices.
    assert any(voice.alias_of for voice in voices) and any(voice.alias_of is None for voice in voices)


async def test_analyze_and_convert(gateway: Gateway) -> None:
    song = encode_audio(Pcm(_song(261.63, 120), 22_050), FORMATS["mp3"])
    speech = encode_audio(Pcm(_song(261.63, 120)[:22_050], 22_050), FORMATS["wav"])
    async with AsyncRestClient(gateway.base_url, await gateway.key()) as client:
        found = await client.analyze(song)
        flac = await client.convert(speech, "flac", sample_rate=44100, channels="stereo")
        with pytest.raises(BadRequestError) as refused:
            await client.convert(speech, "ogg", channels="mono")  # Vorbis is stereo only here
    assert (found.key, found.scale, found.camelot, found.time_signature) == ("C", "Major", "8B", "4/4")
    assert found.bpm == pytest.approx(120, rel=0.02)
    assert found.compatible_keys == ["C Major", "G Major", "F Major", "A Minor"]
    samples, rate = decode(flac)
    assert flac[:4] == b"fLaC" and rate == 44100 and len(samples) / rate == pytest.approx(1.0, abs=0.01)
    assert refused.value.status == 400


async def test_errors_are_typed_with_the_documented_code(gateway: Gateway) -> None:
    async with AsyncRestClient(gateway.base_url, await gateway.key("pro")) as client:
        with pytest.raises(NotFoundError) as unknown:
            await client.synthesize("Hello.", voice="no-such-voice")
        assert (unknown.value.status, unknown.value.code) == (404, "not_found")
        assert "no-such-voice" in unknown.value.message and unknown.value.fields["list_url"]

        with pytest.raises(BadRequestError) as too_long:
            await client.synthesize("a" * 5_001)  # Pro: 5,000 characters
        assert (too_long.value.status, too_long.value.code, too_long.value.param) == (400, "bad_request", "text")

        with pytest.raises(FileTooLargeError) as too_large:
            await client.synthesize("a" * 80_000)  # a Pro body: at most 12 x 5,000 characters + 16 KiB
        assert (too_large.value.status, too_large.value.code) == (413, "file_too_large")

        with pytest.raises(BadRequestError) as too_fast:
            await client.synthesize("Hello.", speed=3.0)
        assert too_fast.value.param == "speed"

        with pytest.raises(NotFoundError):  # a stream's error arrives before its first piece
            async for _ in client.stream_synthesis("Hello.", model="no-such-model"):
                pass

    async with AsyncRestClient(gateway.base_url, "sk-tts-not-a-key") as client:
        with pytest.raises(UnauthorizedError) as unauthorized:
            await client.models()
    assert (unauthorized.value.status, unauthorized.value.code) == (401, "unauthorized")

    async with AsyncRestClient(gateway.base_url, await gateway.key("free")) as client:
        with pytest.raises(ForbiddenError) as forbidden:
            await client.voices()
    assert (forbidden.value.status, forbidden.value.code) == (403, "forbidden")

    async with AsyncRestClient(gateway.base_url, await gateway.key("pro", credits=0)) as client:
        with pytest.raises(InsufficientCreditsError) as broke:
            await client.synthesize(TEXT, model="piper")
    assert (broke.value.status, broke.value.code) == (402, "insufficient_credits")
    assert (broke.value.credits_required, broke.value.credits_available) == (1, 0)
    assert client.last_usage is not None and client.last_usage.credits_remaining == 0


async def test_the_sync_client_raises_the_same_errors(gateway: Gateway) -> None:
    key = await gateway.key()

    def fail() -> tuple[NotFoundError, NotFoundError]:
        with RestClient(gateway.base_url, key) as client:
            with pytest.raises(NotFoundError) as whole:
                client.synthesize("Hello.", voice="no-such-voice")
            with pytest.raises(NotFoundError) as streamed:
                b"".join(client.stream_synthesis("Hello.", voice="no-such-voice"))
            return whole.value, streamed.value

    for error in await asyncio.to_thread(fail):
        assert (error.status, error.code) == (404, "not_found") and "no-such-voice" in error.message
