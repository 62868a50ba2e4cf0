"""What the mesh costs over calling the audio pipeline directly, and what the audio service holds.

    .venv/bin/python bench/audio_tools.py [--runs 3] [--big-mib 100]

Starts the real audio service and a TTS service (Piper and Festival: the target voice of
voice conversion) as their own processes (so their memory can be read from /proc) and the
gateway in this process. Per operation it alternates the direct call (the same pipeline
function with the same engines, in this process, on the same bytes) with the same upload
POSTed to the gateway (HTTP -> gateway -> gRPC -> service). Inputs: 24.6 s of real human
speech (five LibriVox clips from Debian's pocketsphinx-testdata, 16 kHz), with noise for
enhance and reverberation for dereverb, and 30 s of synthesized stereo music at 44.1 kHz
for separate and analyze. Prints median wall seconds, real-time factors and the
mesh/direct ratio; then the service's resident memory once loaded, its peak after the
runs, and (measured first, on the loaded service) its peak while it enhances (RNNoise) and
converts a `--big-mib` MiB WAV.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from harness import gateway_client, memory_mib

from services.audio import pipeline
from services.audio.pipeline import Bounds, Delivery, EnhanceOptions, Voice
from services.audio.registry import build_engines
from services.audio.settings import AudioSettings
from speechmesh.common.audio.decode import decode_audio
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import FORMATS, OutputSpec
from speechmesh.common.audio.pcm import Pcm
from speechmesh.speakers.world import PROFILE_TEXT

AUDIO_PORT, TTS_PORT = 50153, 50151
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
TARGET = "festival-us-slt"


def human_speech() -> Pcm:
    clips = sorted(LIBRIVOX.glob("*.wav"))
    return Pcm(np.concatenate([decode_audio(path.read_bytes()).samples for path in clips]), 16_000)


def noisy(pcm: Pcm) -> Pcm:
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(pcm.frames).astype(np.float32)
    noise *= np.sqrt(np.mean(pcm.samples**2) / np.mean(noise**2) / 10 ** (5 / 10))
    return Pcm(pcm.samples + noise, pcm.sample_rate)


def reverberant(pcm: Pcm) -> Pcm:
    rng = np.random.default_rng(1)
    t = np.arange(int(0.6 * pcm.sample_rate)) / pcm.sample_rate
    rir = rng.standard_normal(t.size) * np.exp(-6.9 * t / 0.6) * 0.3
    rir[0] = 1.0
    wet = np.convolve(pcm.samples, rir)[: pcm.frames]
    return Pcm((wet / np.abs(wet).max() * 0.9).astype(np.float32), pcm.sample_rate)


def music(seconds: float = 30.0, rate: int = 44_100) -> Pcm:
    """A I-IV-V-I progression with a bass line, a kick and a melody; stereo, 120 BPM."""
    t = np.arange(int(seconds * rate)) / rate
    beat = 0.5
    out = np.zeros((t.size, 2))
    for bar, chord in enumerate([(0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7)] * 8):
        span = (t >= bar * 2) & (t < bar * 2 + 2)
        for step in chord:
            tone = np.sin(2 * np.pi * 261.63 * 2 ** (step / 12) * t[span]) * 0.08
            out[span] += np.stack([tone * 0.8, tone * 0.4], axis=1)
        bass = np.sin(2 * np.pi * 65.4 * 2 ** (chord[0] / 12) * t[span]) * 0.2
        out[span] += bass[:, None]
    kick = np.sin(2 * np.pi * 55 * t) * np.exp(-np.mod(t, beat) * 25) * 0.4
    melody = np.sin(2 * np.pi * 523.25 * 2 ** (np.floor(t * 2) % 5 / 12) * t) * 0.15
    out += (kick + melody)[:, None]
    return Pcm((out / np.abs(out).max() * 0.9).astype(np.float32), rate)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


async def posted(http: httpx.AsyncClient, path: str, data: bytes, fields: dict[str, str]) -> float:
    started = time.perf_counter()
    reply = await http.post(path, files={"file": ("in.wav", data)}, data=fields)
    reply.raise_for_status()
    return time.perf_counter() - started


async def wait_ready(http: httpx.AsyncClient, services: list[subprocess.Popen]) -> None:
    while True:
        upstreams = (await http.get("/readyz")).json()["upstreams"]
        if upstreams.get("audio") == "SERVING" and upstreams.get("tts") == "SERVING":
            return
        if any(service.poll() is not None for service in services):
            raise RuntimeError("a service exited")
        await asyncio.sleep(0.2)


async def peak_while(http: httpx.AsyncClient, pid: int, path: str, data: bytes, fields: dict[str, str]) -> float:
    """The service's peak resident MiB over one request (its peak is reset first)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    reply = await http.post(path, files={"file": ("big.wav", data)}, data=fields, timeout=3600)
    reply.raise_for_status()
    return memory_mib(pid)[1]


async def main(runs: int, big_mib: int) -> None:
    settings = AudioSettings(engines=[e for e in AudioSettings().engines if e != "demucs"])
    speech, song = human_speech(), music()
    inputs = {
        "speech": encode_audio(speech, FORMATS["wav"]),
        "noisy": encode_audio(noisy(speech), FORMATS["wav"]),
        "reverberant": encode_audio(reverberant(speech), FORMATS["wav"]),
        "music": encode_audio(song, FORMATS["wav"], channels=2),
    }
    env = {**os.environ, "SPEECHMESH_AUDIO_LOG_LEVEL": "WARNING", "SPEECHMESH_TTS_LOG_LEVEL": "WARNING"}
    tts = subprocess.Popen(
        [sys.executable, "-m", "services.tts"],
        env={**env, "SPEECHMESH_TTS_PORT": str(TTS_PORT), "SPEECHMESH_TTS_ENGINES": '["piper", "festival"]'},
    )
    audio = subprocess.Popen(
        [sys.executable, "-m", "services.audio"],
        env={
            **env,
            "SPEECHMESH_AUDIO_PORT": str(AUDIO_PORT),
            "SPEECHMESH_AUDIO_TTS_ADDRESS": f"127.0.0.1:{TTS_PORT}",
            "SPEECHMESH_AUDIO_ENGINES": str(settings.engines).replace("'", '"'),
        },
    )
    try:
        async with gateway_client(tts_address=f"127.0.0.1:{TTS_PORT}", audio_address=f"127.0.0.1:{AUDIO_PORT}") as http:
            await wait_ready(http, [tts, audio])
            loaded = memory_mib(audio.pid)
            # The long file first, while the service holds only what loading left.
            frames = big_mib * 1024 * 1024 // 4
            big = encode_audio(
                Pcm(np.tile(song.samples, (frames // song.frames + 1, 1))[:frames], song.sample_rate),
                FORMATS["wav"],
                channels=2,
            )
            minutes = frames / song.sample_rate / 60
            enhance_peak = await peak_while(http, audio.pid, "/v1/audio/enhance/", big, {"model": "rnnoise"})
            convert_peak = await peak_while(http, audio.pid, "/v1/audio/convert/", big, {"format": "mp3"})
            engines = build_engines(settings)
            engines.load()
            # The direct path's target voice: the same speech the service asks TTS for.
            reply = await http.post("/v1/tts/", json={"text": PROFILE_TEXT, "voice": TARGET, "format": "wav"})
            _, converter = engines.converters.get("")
            target = converter.profile(decode_audio(reply.content, sample_rate=24_000))
            bounds = Bounds(3600, settings.segment_seconds, settings.overlap_seconds)
            keep = Delivery(None, "input")
            cases = [
                (
                    "enhance dfn3",
                    "/v1/audio/enhance/",
                    "noisy",
                    {},
                    lambda f: pipeline.enhance(
                        f, engines.denoisers.get("deepfilternet3")[1], EnhanceOptions(True, True, 2), keep, bounds
                    ),
                ),
                (
                    "enhance rnnoise",
                    "/v1/audio/enhance/",
                    "noisy",
                    {"model": "rnnoise"},
                    lambda f: pipeline.enhance(
                        f, engines.denoisers.get("rnnoise")[1], EnhanceOptions(True, True, 2), keep, bounds
                    ),
                ),
                (
                    "dereverb",
                    "/v1/audio/dereverb/",
                    "reverberant",
                    {},
                    lambda f: pipeline.dereverb(f, engines.dereverberators.get("")[1], "both", 3, keep, bounds),
                ),
                (
                    "separate 4",
                    "/v1/audio/separate/",
                    "music",
                    {"stems": "4"},
                    lambda f: pipeline.separate(f, engines.separators.get("")[1], 4, Delivery(None, "wav"), bounds),
                ),
                (
                    "analyze",
                    "/v1/audio/analyze/",
                    "music",
                    {},
                    lambda f: pipeline.analyze(f, engines.analyzers.get("")[1]),
                ),
                (
                    "convert mp3",
                    "/v1/audio/convert/",
                    "music",
                    {"format": "mp3"},
                    lambda f: pipeline.convert(f, Delivery(OutputSpec(FORMATS["mp3"], 0, 0, 0), "wav"), bounds),
                ),
                (
                    "voice-convert",
                    "/v1/voice-convert/",
                    "speech",
                    {"target_voice": TARGET},
                    lambda f: pipeline.voice_convert(
                        f, Voice(converter, pipeline.speaker(f, converter), target), Delivery(None, "wav"), bounds
                    ),
                ),
                (
                    "speech-to-speech",
                    "/v1/speech-to-speech/",
                    "speech",
                    {"emotion": "happy"},
                    lambda f: pipeline.restyle(f, engines.restylers.get("")[1], "happy", 1.0, None, keep, bounds),
                ),
            ]
            print(
                f"inputs: {speech.duration_seconds:.1f} s of human speech (16 kHz), {song.duration_seconds:.0f} s "
                f"of stereo music (44.1 kHz); {runs} runs each, medians"
            )
            print(f"{'operation':18} {'direct s':>9} {'mesh s':>8} {'direct RTF':>11} {'mesh RTF':>9} {'ratio':>7}")
            for name, path, source, fields, direct in cases:
                data = inputs[source]
                seconds = (song if source == "music" else speech).duration_seconds

                def call(data: bytes = data, direct: Callable = direct) -> None:
                    result = direct(io.BytesIO(data))
                    if hasattr(result, "close"):
                        result.close()

                timed(call)
                await posted(http, path, data, fields)  # warm both paths
                d_wall, m_wall = [], []
                for _ in range(runs):
                    d_wall.append(timed(call))
                    m_wall.append(await posted(http, path, data, fields))
                d, m = statistics.median(d_wall), statistics.median(m_wall)
                print(f"{name:18} {d:9.3f} {m:8.3f} {d / seconds:11.4f} {m / seconds:9.4f} {m / d:7.3f}")
            after = memory_mib(audio.pid)
        print(f"\naudio service: {loaded[0]:.0f} MiB resident once loaded, {after[1]:.0f} MiB peak after the runs")
        print(
            f"a {len(big) / 2**20:.0f} MiB WAV ({minutes:.1f} min, 44.1 kHz stereo): peak {enhance_peak:.0f} MiB "
            f"enhancing it (rnnoise + clarity), {convert_peak:.0f} MiB converting it to MP3"
        )
    finally:
        for service in (audio, tts):
            service.terminate()
            service.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big-mib", type=int, default=100)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.big_mib))
