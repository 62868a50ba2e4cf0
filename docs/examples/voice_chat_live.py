"""Talk to speechmesh's live voice chat (WebSocket /v1/voice-chat/live) from Python.

Streams a WAV file (16-bit mono; any rate 8-48 kHz) as if it came from a microphone, prints
the transcripts and the reply as they arrive, and writes each reply's speech to a WAV file.
Needs only `websockets` (pip install websockets).

    python voice_chat_live.py --url ws://127.0.0.1:8000 --key sk-tts-... question.wav

From a microphone, feed the same frames from e.g. `sounddevice.RawInputStream(samplerate=16000,
channels=1, dtype="int16")` instead of the file, and play the reply frames as they come
(use the platform's echo cancellation: the reply picked up by the microphone is speech too,
and speech during a reply interrupts it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import wave
from pathlib import Path

import websockets

FRAME_SECONDS = 0.1


async def talk(url: str, key: str, question: Path, out: Path) -> None:
    with wave.open(str(question), "rb") as source:
        if source.getnchannels() != 1 or source.getsampwidth() != 2:
            raise SystemExit("the WAV file must be 16-bit mono")
        rate = source.getframerate()
        pcm = source.readframes(source.getnframes())
    # Silence after the question: the server ends a turn after ~0.6 s without speech.
    pcm += b"\0\0" * int(rate * 1.5)
    frame = int(rate * FRAME_SECONDS) * 2
    # Browsers cannot set headers on a WebSocket: the key goes as a subprotocol.
    async with websockets.connect(f"{url}/v1/voice-chat/live", subprotocols=["speechmesh.v1", f"bearer.{key}"]) as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": rate}))
        ready = json.loads(await ws.recv())
        if ready["type"] != "ready":
            raise SystemExit(f"refused: {ready}")

        async def send() -> None:
            for start in range(0, len(pcm), frame):
                await ws.send(pcm[start : start + frame])
                await asyncio.sleep(FRAME_SECONDS)  # real time, as a microphone would

        sender = asyncio.create_task(send())
        reply = bytearray()
        while True:
            message = await ws.recv()
            if isinstance(message, bytes):
                reply += message  # 16-bit mono PCM at ready["reply_sample_rate"]
                continue
            event = json.loads(message)
            if event["type"] == "transcript":
                print(("heard: " if event["final"] else "hearing: ") + event["text"])
            elif event["type"] == "reply.text":
                print("reply: " + event["delta"])
            elif event["type"] == "interrupted":
                print("(reply interrupted)")
                reply.clear()
            elif event["type"] == "error":
                raise SystemExit(f"error: {event['error']}")
            elif event["type"] == "reply.done":
                print(f"done: conversation {event['conversation_id']}, {event['credits_used']} credits")
                break
        await sender
        await ws.send(json.dumps({"type": "stop"}))
    with wave.open(str(out), "wb") as sink:
        sink.setnchannels(1)
        sink.setsampwidth(2)
        sink.setframerate(ready["reply_sample_rate"])
        sink.writeframes(bytes(reply))
    print(f"reply speech: {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", type=Path, help="a 16-bit mono WAV file")
    parser.add_argument("--url", default="ws://127.0.0.1:8000")
    parser.add_argument("--key", required=True)
    parser.add_argument("--out", type=Path, default=Path("reply.wav"))
    args = parser.parse_args()
    asyncio.run(talk(args.url, args.key, args.question, args.out))


if __name__ == "__main__":
    main()
