"""The live voice chat over a real WebSocket: a spoken question answered as it is spoken,
interim transcripts first, the key offered as a subprotocol; barge-in stops the reply
upstream and the interrupted turn is not charged; bad sessions get their error event."""

from __future__ import annotations

import asyncio
import json
import sys
import wave
from collections.abc import AsyncIterator, Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest_asyncio
import soxr
import websockets

from gateway.routers.voice_chat_live import PROTOCOL
from speechmesh.common.audio.pcm import Pcm
from tests.conftest import Gateway, running_chat, running_gateway, transcribe, word_error_rate, words
from tests.test_chat_service import ScriptedModel, _engines

RATE = 16_000
EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "voice_chat_live.py"
FRAME = RATE // 10  # 100 ms


def _pcm16(pcm: Pcm, silence_after: float = 1.2) -> bytes:
    samples = soxr.resample(pcm.samples, pcm.sample_rate, RATE)
    samples = np.concatenate(
        [np.zeros(RATE // 4, np.float32), samples, np.zeros(int(silence_after * RATE), np.float32)]
    )
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def _url(gateway: Gateway) -> str:
    return gateway.base_url.replace("http://", "ws://") + "/v1/voice-chat/live"


async def _say(socket: Any, pcm: bytes) -> None:
    """Sends `pcm` in 100 ms frames, a little faster than real time."""
    for start in range(0, len(pcm), FRAME * 2):
        await socket.send(pcm[start : start + FRAME * 2])
        await asyncio.sleep(0.02)


async def _events(socket: Any, until: str, timeout: float = 60) -> tuple[list[dict], bytes]:
    events: list[dict] = []
    audio = b""
    async with asyncio.timeout(timeout):
        while True:
            message = await socket.recv()
            if isinstance(message, bytes):
                audio += message
                events.append({"type": "audio"})
                continue
            event = json.loads(message)
            events.append(event)
            if event["type"] in (until, "error"):
                return events, audio


def _wav(pcm: bytes, rate: int) -> bytes:
    buffer = BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


async def test_a_spoken_question_is_answered_live(gateway: Gateway, speak: Callable[[str], Pcm], whisper) -> None:
    key = await gateway.key("pro")
    async with websockets.connect(_url(gateway), subprotocols=[PROTOCOL, f"bearer.{key}"]) as socket:
        assert socket.subprotocol == PROTOCOL
        await socket.send(json.dumps({"type": "start", "sample_rate": RATE, "language": "en"}))
        ready = json.loads(await socket.recv())
        assert ready == {"type": "ready", "sample_rate": RATE, "reply_sample_rate": 24000}
        # Not about France: asked that, SmolLM2-135M once answered in French, which the reply's
        # English voice then read (when the live cut left "Hello there" a turn of its own).
        await _say(socket, _pcm16(speak("Hello there. Could you tell me how many days a week has, please?")))
        events, audio = await _events(socket, "reply.done")
        await socket.send(json.dumps({"type": "stop"}))
    kinds = [event["type"] for event in events]
    assert "error" not in kinds, events
    finals = [e for e in events if e["type"] == "transcript" and e["final"]]
    assert kinds.index("transcript") < kinds.index("reply.start") < kinds.index("audio") < kinds.index("reply.done")
    assert any(e["type"] == "transcript" and not e["final"] for e in events), "interim transcripts come first"
    assert {"days", "week"} <= set(words(finals[-1]["text"]))
    done = events[-1]
    assert done["credits_used"] == 3 and done["conversation_id"].startswith("conv_")
    assert done["ai_text"] == "".join(e["delta"] for e in events if e["type"] == "reply.text")
    assert len(audio) / 2 / 24000 > 0.5
    assert word_error_rate(done["ai_text"], transcribe(whisper, _wav(audio, 24000))) < 0.35


@pytest_asyncio.fixture
async def slow_chat(tts_port: int, stt_port: int, tmp_path: Path) -> AsyncIterator[tuple[Gateway, ScriptedModel]]:
    """A gateway whose chat service's model writes slowly: replies last long enough to interrupt."""
    model = ScriptedModel(0.25)
    async with (
        running_chat(
            tts_port, stt_port, _engines(model), default_voice="en_US-joe-medium", default_tts_model="piper"
        ) as port,
        running_gateway(
            f"127.0.0.1:{tts_port}", tmp_path / "db.sqlite", f"127.0.0.1:{stt_port}", chat_address=f"127.0.0.1:{port}"
        ) as gateway,
    ):
        yield gateway, model


async def test_speech_during_the_reply_interrupts_it_and_it_is_not_charged(
    slow_chat: tuple[Gateway, ScriptedModel], speak: Callable[[str], Pcm]
) -> None:
    gateway, model = slow_chat
    key, secret = await gateway.keys.create("test-live", "pro")
    await gateway.stores.credits.grant(key.id, 100, "test")
    async with websockets.connect(_url(gateway), additional_headers={"Authorization": f"Bearer {secret}"}) as socket:
        await socket.send(json.dumps({"type": "start", "sample_rate": RATE}))
        await socket.recv()  # ready
        await _say(socket, _pcm16(speak("Please tell me a long story.")))
        await _events(socket, "reply.start")
        # The user speaks over the reply.
        await _say(socket, _pcm16(speak("Wait, stop, I have another question for you.")))
        events, _ = await _events(socket, "interrupted")
        assert events[-1]["type"] == "interrupted", events
        await asyncio.to_thread(model.stopped.wait, 5)
        assert model.stopped.is_set()
        # The second utterance is a turn of its own, answered whole.
        events, _ = await _events(socket, "reply.done", timeout=90)
        assert events[-1]["type"] == "reply.done", events
        await socket.send(json.dumps({"type": "stop"}))
    assert await gateway.stores.credits.balance(key.id) == 100 - 3


async def test_a_session_without_a_key_or_start_gets_an_error_event(gateway: Gateway) -> None:
    async with websockets.connect(_url(gateway)) as socket:
        event = json.loads(await socket.recv())
        assert event["type"] == "error" and event["error"]["code"] == "unauthorized"
    key = await gateway.key("pro")
    async with websockets.connect(_url(gateway), subprotocols=[PROTOCOL, f"bearer.{key}"]) as socket:
        await socket.send(json.dumps({"type": "start", "sample_rate": 1}))
        event = json.loads(await socket.recv())
        assert event["type"] == "error" and event["error"]["param"] == "sample_rate"
    async with websockets.connect(_url(gateway), subprotocols=[PROTOCOL, f"bearer.{key}"]) as socket:
        await socket.send(b"\0\0" * 100)
        event = json.loads(await socket.recv())
        assert event["type"] == "error" and event["error"]["code"] == "bad_request"
    # A frame over a second of audio: refused, the session ends.
    async with websockets.connect(_url(gateway), subprotocols=[PROTOCOL, f"bearer.{key}"]) as socket:
        await socket.send(json.dumps({"type": "start", "sample_rate": RATE}))
        assert json.loads(await socket.recv())["type"] == "ready"
        await socket.send(b"\0\0" * (RATE + 1))
        event = json.loads(await socket.recv())
        assert event["type"] == "error" and "one second" in event["error"]["message"]
    # A key that cannot pay a turn gets its 402 before any recognition runs.
    broke = await gateway.key("pro", credits=0)
    async with websockets.connect(_url(gateway), subprotocols=[PROTOCOL, f"bearer.{broke}"]) as socket:
        await socket.send(json.dumps({"type": "start", "sample_rate": RATE}))
        event = json.loads(await socket.recv())
        assert event["type"] == "error" and event["error"]["code"] == "insufficient_credits", event


async def test_the_documented_python_example_talks_to_it(
    gateway: Gateway, speak: Callable[[str], Pcm], tmp_path: Path, whisper
) -> None:
    question = tmp_path / "question.wav"
    pcm = speak("What colour is the sky on a clear day?")
    samples = (np.clip(pcm.samples, -1, 1) * 32767).astype("<i2").tobytes()
    question.write_bytes(_wav(samples, pcm.sample_rate))
    reply = tmp_path / "reply.wav"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--url",
        gateway.base_url.replace("http://", "ws://"),
        "--key",
        await gateway.key("pro"),
        "--out",
        str(reply),
        str(question),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, output.decode()
    printed = output.decode()
    assert "heard: " in printed and "done: conversation conv_" in printed
    spoken = next(line.removeprefix("reply: ") for line in printed.splitlines() if line.startswith("reply: "))
    assert words(spoken)[0] in words(transcribe(whisper, reply.read_bytes()))
