"""The official `openai` SDK, unchanged, against POST /v1/audio/speech: every response
format heard back by Whisper, streaming as it is synthesized, SSE deltas, speeds, errors."""

from __future__ import annotations

import base64
import json

import numpy as np
import openai
import pytest

from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import output_format
from speechmesh.common.audio.pcm import Pcm
from tests.conftest import decode, transcribe, word_error_rate

pytestmark = pytest.mark.slow

TEXT = "The library opens at nine. Children can borrow three books a week. The cafe closes at noon."


@pytest.fixture
async def sdk(gateway):
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.base_url}/v1", api_key=await gateway.key(), max_retries=0
    ) as client:
        yield client


def pcm_as_wav(data: bytes) -> bytes:
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768
    return encode_audio(Pcm(samples, 24_000), output_format("wav"))


@pytest.mark.parametrize("response_format", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
async def test_every_response_format_is_real_speech(sdk, whisper, response_format):
    reply = await sdk.audio.speech.create(model="tts-1", voice="onyx", input=TEXT, response_format=response_format)
    data = reply.content
    audio = pcm_as_wav(data) if response_format == "pcm" else data
    samples, rate = decode(audio)
    if response_format == "pcm":
        assert rate == 24_000
    assert len(samples) / rate > 4
    assert word_error_rate(TEXT, transcribe(whisper, audio)) <= 0.2


async def test_streaming_sends_audio_before_the_end(sdk, whisper):
    chunks: list[bytes] = []
    async with sdk.audio.speech.with_streaming_response.create(
        model="tts-1", voice="echo", input=TEXT, response_format="mp3"
    ) as response:
        assert response.headers["x-voice"]
        async for chunk in response.iter_bytes():
            chunks.append(chunk)
    assert len(chunks) > 1
    assert word_error_rate(TEXT, transcribe(whisper, b"".join(chunks))) <= 0.2


async def test_sse_delivers_base64_deltas_then_done(gateway, whisper):
    async with gateway.client(await gateway.key()) as http:
        body = {"model": "gpt-4o-mini-tts", "voice": "fable", "input": TEXT, "stream_format": "sse"}
        async with http.stream("POST", "/v1/audio/speech", json=body) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = [json.loads(line[6:]) async for line in response.aiter_lines() if line.startswith("data: ")]
    deltas = [event for event in events if event["type"] == "speech.audio.delta"]
    assert len(deltas) > 1 and events[-1]["type"] == "speech.audio.done"
    assert events[-1]["usage"]["input_tokens"] == len(TEXT)
    audio = b"".join(base64.b64decode(event["audio"]) for event in deltas)
    assert word_error_rate(TEXT, transcribe(whisper, audio)) <= 0.2


async def test_openai_speed_range_and_instructions(sdk):
    durations = {}
    for speed in (0.25, 1.0, 4.0):
        reply = await sdk.audio.speech.create(
            model="tts-1", voice="onyx", input="Speed test.", response_format="wav", speed=speed, instructions="calm"
        )
        samples, rate = decode(reply.content)
        durations[speed] = len(samples) / rate
    assert durations[0.25] > 2.5 * durations[1.0] and durations[1.0] > 2.5 * durations[4.0]


async def test_voices_map_to_installed_voices_and_native_ids_pass_through(gateway):
    async with gateway.client(await gateway.key()) as http:
        voices = (await http.get("/v1/voices/")).json()["voices"]
        loaded = {voice["id"] for voice in voices}
        for voice in ("alloy", "onyx", "nova"):
            reply = await http.post("/v1/audio/speech", json={"model": "tts-1", "voice": voice, "input": "Hi."})
            assert reply.status_code == 200 and reply.headers["x-voice"] in loaded
            if voice == "nova":  # a woman's voice: Kokoro's Nezumi, not Piper's Joe
                assert reply.headers["x-voice"] == "jf_nezumi"
        native = await http.post(
            "/v1/audio/speech", json={"model": "piper", "voice": "en_US-joe-medium", "input": "Hi."}
        )
        assert native.headers["x-voice"] == "en_US-joe-medium"


async def test_errors_arrive_as_sdk_exceptions(sdk):
    with pytest.raises(openai.NotFoundError, match="voices"):
        await sdk.audio.speech.create(model="piper", voice="af_bella", input="Hello.")
    with pytest.raises(openai.BadRequestError, match="input"):
        await sdk.audio.speech.create(model="tts-1", voice="alloy", input="   ")
    with pytest.raises(openai.BadRequestError, match="speed"):
        await sdk.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", speed=5.0)
    with pytest.raises(openai.BadRequestError, match="response_format"):
        await sdk.audio.speech.create(
            model="tts-1",
            voice="alloy",
            input="Hi.",
            response_format="ogg",  # type: ignore[arg-type]
        )
    with pytest.raises(openai.NotFoundError):
        await sdk.audio.speech.create(model="chatterbox", voice="alloy", input="Hi.")
