"""What the mesh costs over calling each TTS engine directly, and streaming time to first audio.

    .venv/bin/python bench/tts_overhead.py [--runs 10] [--engines piper,kokoro,espeak,festival]

Starts the real TTS service (gRPC, port 0) and the gateway (HTTP, port 0) in this
process, then per engine alternates a direct call (sentence split + engine synthesis +
the same WAV encoder the service uses) with the same request through HTTP -> gateway ->
gRPC -> service. Prints median wall times, real-time factors (wall / audio seconds)
and the mesh/direct ratio; then, per engine, the streaming time to first audio through
the gateway (p50/p95) against the direct time to the audio of the stream's first piece. Piper adds random
noise to durations, so RTF is the fair comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import time
import wave

import httpx
from harness import gateway_client

from services.tts.registry import build_engines
from services.tts.server import create_server
from services.tts.settings import TtsSettings
from services.tts.synthesizer import SynthesisOptions
from speechmesh.common.audio.encode import StreamEncoder
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.sentences import split_sentences
from speechmesh.runtime.server import stop_server

TEXT = " ".join(
    [
        "Speech services are judged by how fast they answer.",
        "This benchmark compares the mesh with a direct call.",
        "Both produce the same audio with the same engine.",
        "The difference is the cost of the network hops.",
    ]
)
VOICES = {
    "piper": "en_US-joe-medium",
    "kokoro": "jm_kumo",
    "espeak": "espeak-en-us-m",
    "festival": "festival-us-slt",
}


def direct(engine, voice: str, rate: int) -> tuple[float, float]:
    """(wall seconds, audio seconds) of a direct call."""
    started = time.perf_counter()
    encoder = StreamEncoder(FORMATS["wav"], rate, streaming=False)
    for sentence in split_sentences(TEXT, "en"):
        for pcm in engine.synthesize(sentence, SynthesisOptions(voice, "en", 1.0)):
            encoder.feed(pcm)
    encoder.finish()
    return time.perf_counter() - started, encoder.duration_seconds


def direct_first(engine, voice: str, first_piece: int) -> float:
    """Seconds to the audio of the first piece a stream would send, called directly."""
    started = time.perf_counter()
    head = split_sentences(TEXT, "en", first_piece=first_piece)[0]
    for _ in engine.synthesize(head, SynthesisOptions(voice, "en", 1.0)):
        break
    return time.perf_counter() - started


async def mesh(http: httpx.AsyncClient, model: str, voice: str) -> tuple[float, float]:
    started = time.perf_counter()
    reply = await http.post("/v1/tts/", json={"text": TEXT, "model": model, "voice": voice, "format": "wav"})
    reply.raise_for_status()
    wall = time.perf_counter() - started
    with wave.open(io.BytesIO(reply.content)) as audio:
        return wall, audio.getnframes() / audio.getframerate()


async def first_audio(http: httpx.AsyncClient, model: str, voice: str) -> float:
    """Seconds to the first audio byte; the rest is read, as a listener would."""
    started = time.perf_counter()
    first = 0.0
    body = {"text": TEXT, "model": model, "voice": voice, "format": "mp3", "stream": True}
    async with http.stream("POST", "/v1/tts/", json=body) as reply:
        async for _ in reply.aiter_raw():
            first = first or time.perf_counter() - started
    return first


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def main(runs: int, models: list[str]) -> None:
    settings = TtsSettings(port=0, log_json=False, log_level="WARNING", engines=models, cloners=[])
    engines = build_engines(settings)
    registry = engines.synthesizers
    server, port = await create_server(settings, engines)
    while len(registry.engines()) < len(models):
        await asyncio.sleep(0.1)
    async with gateway_client(tts_address=f"127.0.0.1:{port}") as http:
        print(f"text: 4 sentences, {len(TEXT)} characters; medians of {runs} runs")
        print(f"{'engine':10} {'direct s':>9} {'mesh s':>8} {'direct RTF':>11} {'mesh RTF':>9} {'mesh/direct':>12}")
        streaming: dict[str, tuple[list[float], list[float]]] = {}
        for model in models:
            engine, voice = registry.engines()[model], VOICES[model]
            rate = next(card.sample_rate for card in engine.voices() if card.id == voice)
            await mesh(http, model, voice)  # warm both paths
            direct(engine, voice, rate)
            d_rtf, m_rtf, d_wall, m_wall, d_first = [], [], [], [], []
            for _ in range(runs):
                wall, audio = direct(engine, voice, rate)
                d_wall.append(wall)
                d_rtf.append(wall / audio)
                d_first.append(direct_first(engine, voice, engines.first_piece(model)))
                wall, audio = await mesh(http, model, voice)
                m_wall.append(wall)
                m_rtf.append(wall / audio)
            ratio = statistics.median(m_rtf) / statistics.median(d_rtf)
            print(
                f"{model:10} {statistics.median(d_wall):9.3f} {statistics.median(m_wall):8.3f} "
                f"{statistics.median(d_rtf):11.3f} {statistics.median(m_rtf):9.3f} {ratio:12.3f}"
            )
            streaming[model] = (d_first, [await first_audio(http, model, voice) for _ in range(runs * 2)])
        print(f"\nstreaming time to first audio ({runs} direct runs, {runs * 2} gateway runs each):")
        for model, (d_first, m_first) in streaming.items():
            print(
                f"  {model:10} direct first piece p50 {pct(d_first, 50) * 1000:6.1f} ms  p95 "
                f"{pct(d_first, 95) * 1000:6.1f} ms | gateway first byte p50 {pct(m_first, 50) * 1000:6.1f} ms  "
                f"p95 {pct(m_first, 95) * 1000:6.1f} ms"
            )
    await stop_server(server, grace=0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--engines", default="piper,kokoro,espeak,festival")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.engines.split(",")))
