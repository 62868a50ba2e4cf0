"""What the mesh costs over calling each TTS engine directly, and streaming time to first audio.

    .venv/bin/python bench/tts_overhead.py [--runs 10] [--engines piper,kokoro,espeak,festival] [--formats mp3,wav]

Starts the real TTS service (gRPC, port 0) and the gateway (HTTP, port 0) in this
process, then per engine alternates a direct call (sentence split + engine synthesis +
the same WAV encoder the service uses) with the same request through HTTP -> gateway ->
gRPC -> service. Prints median wall times, real-time factors (wall / audio seconds)
and the mesh/direct ratio; then, per engine, the streaming time to first audio through
the gateway (p50/p95, per format: mp3 unless --formats names others) against the direct
time to the audio of the stream's first piece. Piper adds random noise to durations, so
RTF is the fair comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import time
import wave

import httpx
from engine_calls import VOICES, synthesize
from harness import gateway_client
from mesh_calls import first_audio, tts_body

from services.tts.registry import build_engines
from services.tts.server import create_server
from services.tts.settings import TtsSettings
from services.tts.synthesizer import SynthesisOptions, Synthesizer
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


def direct_first(engine: Synthesizer, voice: str, first_piece: int) -> float:
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


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def main(runs: int, models: list[str], formats: list[str]) -> None:
    settings = TtsSettings(port=0, log_json=False, log_level="WARNING", engines=models, cloners=[])
    engines = build_engines(settings)
    registry = engines.synthesizers
    server, port = await create_server(settings, engines)
    while len(registry.engines()) < len(models):
        await asyncio.sleep(0.1)
    async with gateway_client(tts_address=f"127.0.0.1:{port}") as http:
        print(f"text: 4 sentences, {len(TEXT)} characters; medians of {runs} runs")
        print(f"{'engine':10} {'direct s':>9} {'mesh s':>8} {'direct RTF':>11} {'mesh RTF':>9} {'mesh/direct':>12}")
        streaming: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
        for model in models:
            engine, voice = registry.engines()[model], VOICES[model]
            await mesh(http, model, voice)  # warm both paths
            synthesize(engine, voice, TEXT)
            d_rtf, m_rtf, d_wall, m_wall, d_first = [], [], [], [], []
            for _ in range(runs):
                wall, audio = synthesize(engine, voice, TEXT)
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
            for audio_format in formats:
                body = tts_body(TEXT, model, voice, audio_format, stream=True)
                streaming[model, audio_format] = (d_first, [await first_audio(http, body) for _ in range(runs * 2)])
        print(f"\nstreaming time to first audio ({runs} direct runs, {runs * 2} gateway runs each):")
        for (model, audio_format), (d_first, m_first) in streaming.items():
            print(
                f"  {model:10} {audio_format:5} direct first piece p50 {pct(d_first, 50) * 1000:6.1f} ms  p95 "
                f"{pct(d_first, 95) * 1000:6.1f} ms | gateway first byte p50 {pct(m_first, 50) * 1000:6.1f} ms  "
                f"p95 {pct(m_first, 95) * 1000:6.1f} ms"
            )
    await stop_server(server, grace=0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--engines", default="piper,kokoro,espeak,festival")
    parser.add_argument("--formats", default="mp3", help="formats of the streaming runs, comma-separated")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.engines.split(","), arguments.formats.split(",")))
