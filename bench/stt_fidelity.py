"""Does the mesh hear what the library hears? Word error rates of the STT service against the
direct faster-whisper call on the same real recordings, and 1 vs 4 concurrent Recognize calls.

    .venv/bin/python bench/stt_fidelity.py [--sequential] [--min-seconds 7] [--rounds 3]

Recordings (people, not TTS; Debian packages, as the tests use them): English, LibriVox's
Sense and Sensibility (five clips of one reader, pocketsphinx-testdata) and the five joined
with 0.5 s pauses (33 s, past one Whisper window); French, Asterisk's Canadian French
telephone prompts (8 kHz, one speaker; asterisk-core-sounds-fr-wav, transcripts from
asterisk-core-sounds-fr) of at least --min-seconds. The STT service runs in this process on a
free port with its default settings (Whisper base only) and gets each WAV as uploaded, over
gRPC; the direct call is `WhisperModel(...).transcribe(path)` with the library's defaults (beam
5, no VAD) and the service's model settings. `--sequential` also runs the service with
`decoding=sequential` (faster-whisper's own decoder: the path before batched chunks).
WER: lower case, punctuation dropped, single digits and the keypad's * and # as words; jiwer
is not installed, so a word-level edit distance.
Then throughput: LibriVox clip 0890 (5.3 s WAV) through Recognize by 1 client, then by 4 at
once, --rounds times interleaved; medians and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import statistics
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.stt.registry import build_engines
from services.stt.server import create_server
from services.stt.settings import SttSettings, WhisperSettings
from services.stt.weights import install_whisper_base, whisper_base_path
from speechmesh.common.audio.decode import decode_audio
from speechmesh.common.chunks import chunked
from speechmesh.runtime.server import stop_server
from speechmesh.v1 import stt_pb2, stt_pb2_grpc

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
ASTERISK_FR = Path("/usr/share/asterisk/sounds/fr_CA_f_June")
ASTERISK_FR_TEXT = Path("/usr/share/doc/asterisk-core-sounds-fr/core-sounds-fr.txt.gz")
THROUGHPUT_CLIP = "0890"
DIGITS = {
    "en": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
    "fr": ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"],
}
KEYS = {"en": {"*": "star", "#": "pound"}, "fr": {"*": "étoile", "#": "dièse"}}


@dataclass(frozen=True)
class Recording:
    name: str
    language: str
    wav: bytes
    seconds: float
    text: str


def _wav(samples: np.ndarray, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def english() -> list[Recording]:
    lines = (LIBRIVOX / "transcription").read_text().splitlines()
    clips = []
    for path in sorted(LIBRIVOX.glob("*.wav")):
        text = next(line for line in lines if line.endswith(f"({path.stem})")).split("<s>")[1].split("</s>")[0]
        data = path.read_bytes()
        clips.append(Recording(path.stem[-4:], "en", data, len(decode_audio(data).samples) / 16000, text.strip()))
    pause = np.zeros(8000, np.float32)
    joined = np.concatenate([part for clip in clips for part in (decode_audio(clip.wav).samples, pause)])
    text = " ".join(clip.text for clip in clips)
    return [*clips, Recording("all five joined", "en", _wav(joined), len(joined) / 16000, text)]


def french(min_seconds: float) -> list[Recording]:
    texts = {}
    with gzip.open(ASTERISK_FR_TEXT, "rt", encoding="utf-8") as lines:
        listing = list(lines)
    for line in listing:
        name, _, text = line.partition(":")
        text = text.strip().strip("“”")
        if text and not line.startswith(";") and not text.startswith(("[", "(")):
            texts[name.strip()] = text
    recordings = []
    for path in sorted(ASTERISK_FR.glob("*.wav")):
        if path.stem in texts:
            data = path.read_bytes()
            seconds = len(decode_audio(data).samples) / 16000
            if seconds >= min_seconds:
                recordings.append(Recording(path.stem, "fr", data, seconds, texts[path.stem]))
    return recordings


def words(text: str, language: str) -> list[str]:
    for key, word in KEYS[language].items():
        text = text.replace(key, f" {word} ")
    cleaned = "".join(c.lower() if c.isalnum() else " " for c in text).split()
    return [DIGITS[language][int(w)] if w.isdigit() and len(w) == 1 else w for w in cleaned]


def errors(reference: list[str], hypothesis: list[str]) -> int:
    """Word-level edit distance (substitutions + deletions + insertions)."""
    row = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1]


async def recognize(channel: grpc.aio.Channel, data: bytes) -> str:
    async def messages() -> AsyncIterator[stt_pb2.RecognizeRequest]:
        yield stt_pb2.RecognizeRequest(config=stt_pb2.RecognitionConfig(model="whisper"))
        for chunk in chunked(data):
            yield stt_pb2.RecognizeRequest(audio_content=chunk)

    reply = await stt_pb2_grpc.SpeechToTextStub(channel).Recognize(messages())
    return str(reply.text)


async def serving(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    async for reply in health.Watch(health_pb2.HealthCheckRequest()):  # type: ignore[attr-defined]
        if reply.status == health_pb2.HealthCheckResponse.SERVING:
            return


async def mesh(
    settings: SttSettings, recordings: list[Recording], rounds: int
) -> tuple[list[str], dict[int, list[float]]]:
    """Every recording through the service, then the throughput of 1 and 4 clients."""
    server, port = await create_server(settings, build_engines(settings))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await serving(channel)
            texts = [await recognize(channel, recording.wav) for recording in recordings]
            return texts, await throughput(channel, rounds)
    finally:
        await stop_server(server, grace=0)


async def throughput(channel: grpc.aio.Channel, rounds: int, calls: int = 8) -> dict[int, list[float]]:
    data = (LIBRIVOX / f"sense_and_sensibility_01_austen_64kb-{THROUGHPUT_CLIP}.wav").read_bytes()
    await recognize(channel, data)  # warm

    async def client(count: int) -> None:
        for _ in range(count):
            await recognize(channel, data)

    rates: dict[int, list[float]] = {1: [], 4: []}
    for _ in range(rounds):
        for clients in (1, 4):
            started = time.perf_counter()
            await asyncio.gather(*(client(calls // clients) for _ in range(clients)))
            rates[clients].append(calls / (time.perf_counter() - started))
    return rates


def direct(settings: WhisperSettings, path: Path, recordings: list[Recording]) -> list[str]:
    from faster_whisper import WhisperModel

    model = WhisperModel(
        str(path), device=settings.device, compute_type=settings.compute_type, cpu_threads=settings.threads
    )
    texts = []
    for recording in recordings:
        segments, _ = model.transcribe(io.BytesIO(recording.wav))
        texts.append("".join(segment.text for segment in segments))
    return texts


def report(recordings: list[Recording], columns: dict[str, list[str]]) -> None:
    names = list(columns)
    print(f"{'recording':30} {'lang':4} {'s':>5} " + " ".join(f"{name:>10}" for name in names))
    totals: dict[tuple[str, str], list[int]] = {}
    for i, recording in enumerate(recordings):
        reference = words(recording.text, recording.language)
        row = []
        for name in names:
            wrong = errors(reference, words(columns[name][i], recording.language))
            total = totals.setdefault((recording.language, name), [0, 0])
            total[0] += wrong
            total[1] += len(reference)
            row.append(f"{wrong / len(reference):10.3f}")
        print(f"{recording.name:30} {recording.language:4} {recording.seconds:5.1f} " + " ".join(row))
    for language in ("en", "fr"):
        figures = " ".join(f"{name} {totals[language, name][0] / totals[language, name][1]:.3f}" for name in names)
        print(f"WER {language} (errors / reference words over the set): {figures}")


async def main(sequential: bool, min_seconds: float, rounds: int) -> None:
    settings = SttSettings(port=0, engines=["whisper"], default_model="whisper", log_level="WARNING", log_json=False)
    install_whisper_base(settings.models_dir)
    recordings = english() + french(min_seconds)
    print(f"{len(recordings)} recordings, {sum(r.seconds for r in recordings):.0f} s; service: {settings.whisper}")
    columns = {"direct": direct(settings.whisper, whisper_base_path(settings.models_dir), recordings)}
    rates = {}
    columns["mesh"], rates["mesh"] = await mesh(settings, recordings, rounds)
    if sequential:
        before = settings.model_copy(update={"whisper": settings.whisper.model_copy(update={"decoding": "sequential"})})
        columns["sequential"], rates["sequential"] = await mesh(before, recordings, rounds)
    report(recordings, columns)
    for name, rate in rates.items():
        one, four = statistics.median(rate[1]), statistics.median(rate[4])
        print(
            f"{name}: Recognize of a {THROUGHPUT_CLIP} clip (5.3 s WAV): 1 client {one:.2f} req/s "
            f"{[round(r, 2) for r in rate[1]]}, 4 clients {four:.2f} req/s {[round(r, 2) for r in rate[4]]}, "
            f"ratio {four / one:.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", action="store_true", help="also measure decoding=sequential (the old path)")
    parser.add_argument("--min-seconds", type=float, default=7.0, help="shortest French prompt to include")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (1 then 4 clients each)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.sequential, arguments.min_seconds, arguments.rounds))
