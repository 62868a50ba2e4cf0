"""What the mesh costs over calling Piper directly, measured in one process and run.

    .venv/bin/python bench/tts_overhead.py [--runs 10]

Starts the real TTS service (gRPC, port 0) and the gateway (HTTP, port 0), then
alternates, for each text, a direct call (Piper synthesis + the same WAV encoder the
service uses) with the same request through HTTP -> gateway -> gRPC -> service.
Prints median wall times, real-time factors and the mesh/direct ratio, then the
streaming time to first audio through the gateway against the direct time to the
first sentence. Piper adds random noise to durations, so RTF (time / audio seconds)
is the fair comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
from harness import gateway_client

from services.tts.registry import build_registry
from services.tts.server import create_server
from services.tts.settings import TtsSettings
from services.tts.synthesizer import SynthesisOptions
from speechmesh.common.audio import FORMATS, StreamEncoder
from speechmesh.runtime import stop_server

TEXTS = {
    "short (1 sentence)": "Hello from speechmesh! This is a test.",
    "medium (4 sentences)": " ".join(
        [
            "Speech services are judged by how fast they answer.",
            "This benchmark compares the mesh with a direct call.",
            "Both produce the same audio with the same engine.",
            "The difference is the cost of the network hops.",
        ]
    ),
}
VOICE = SynthesisOptions("en_US-joe-medium", "en", 1.0)


def direct(engine, text: str) -> tuple[float, float, float]:
    """(wall seconds, seconds to first sentence, audio seconds) of a direct call."""
    started = time.perf_counter()
    encoder = StreamEncoder(FORMATS["wav"], 22050, streaming=False)
    first = 0.0
    for pcm in engine.synthesize(text, VOICE):
        first = first or time.perf_counter() - started
        encoder.feed(pcm)
    encoder.finish()
    return time.perf_counter() - started, first, encoder.duration_seconds


async def mesh(http: httpx.AsyncClient, text: str) -> tuple[float, float]:
    started = time.perf_counter()
    reply = await http.post("/v1/tts/", json={"text": text, "format": "wav"})
    reply.raise_for_status()
    wall = time.perf_counter() - started
    return wall, (len(reply.content) - 44) / 2 / 22050


async def first_audio(http: httpx.AsyncClient, text: str) -> float:
    """Seconds to the first audio byte; the rest is read, as a listener would."""
    started = time.perf_counter()
    first = 0.0
    async with http.stream("POST", "/v1/tts/", json={"text": text, "format": "mp3", "stream": True}) as reply:
        async for _ in reply.aiter_raw():
            first = first or time.perf_counter() - started
    return first


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def main(runs: int) -> None:
    settings = TtsSettings(port=0, log_json=False, log_level="WARNING")
    registry = build_registry(settings)
    server, port = await create_server(settings, registry)
    while not registry.engines():
        await asyncio.sleep(0.1)
    engine = registry.engines()["piper"]
    async with gateway_client(tts_address=f"127.0.0.1:{port}") as http:
        await mesh(http, "Warm up.")
        print(f"{'text':22} {'direct s':>9} {'mesh s':>8} {'direct RTF':>11} {'mesh RTF':>9} {'mesh/direct':>12}")
        for name, text in TEXTS.items():
            d_rtf, m_rtf, d_wall, m_wall = [], [], [], []
            for _ in range(runs):
                wall, _, audio = direct(engine, text)
                d_wall.append(wall)
                d_rtf.append(wall / audio)
                wall, audio = await mesh(http, text)
                m_wall.append(wall)
                m_rtf.append(wall / audio)
            ratio = statistics.median(m_rtf) / statistics.median(d_rtf)
            print(
                f"{name:22} {statistics.median(d_wall):9.3f} {statistics.median(m_wall):8.3f} "
                f"{statistics.median(d_rtf):11.3f} {statistics.median(m_rtf):9.3f} {ratio:12.3f}"
            )
        text = TEXTS["medium (4 sentences)"]
        d_first = [direct(engine, text)[1] for _ in range(runs * 2)]
        m_first = [await first_audio(http, text) for _ in range(runs * 2)]
        print(f"\nstreaming, {text.count('.')} sentences, {runs * 2} runs each:")
        for label, times in (
            ("direct time to first sentence", d_first),
            ("gateway time to first audio", m_first),
        ):
            print(f"  {label:30} p50 {pct(times, 50) * 1000:6.1f} ms  p95 {pct(times, 95) * 1000:6.1f} ms")
    await stop_server(server, grace=0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    asyncio.run(main(parser.parse_args().runs))
