"""How accurate the word times of `/v1/tts/` with `timestamps: true` are.

    .venv/bin/python bench/tts_alignment.py

Ground truth needs speech whose word boundaries are known, so each word is synthesized
on its own (Piper), trimmed to where its samples rise above -40 dB of the peak, and the
words are joined with 120 ms pauses: every word's true start and end are then exact.
That audio goes through the same path the gateway uses (the STT service with word
timestamps, then `gateway.alignment.align` of the known text), and the script prints
the error of every word's start and end: median, 90th percentile and maximum, in ms.
"""

from __future__ import annotations

import asyncio
import statistics

import grpc
import numpy as np

from gateway.alignment import TimedWord, align
from services.stt.registry import build_engines
from services.stt.server import create_server
from services.stt.settings import SttSettings
from services.stt.weights import install_whisper_base
from services.tts.engines.piper import PiperSynthesizer
from services.tts.settings import PiperSettings
from services.tts.synthesizer import SynthesisOptions
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.audio.pcm import Pcm
from speechmesh.runtime.server import stop_server
from speechmesh.v1 import stt_pb2, stt_pb2_grpc

TEXTS = (
    "The morning train to the coast was full of students and their heavy bags.",
    "Please call the office before noon if you cannot attend the meeting tomorrow.",
    "A quiet river runs behind the old mill where the children used to play.",
)
PAUSE_SECONDS = 0.12
RATE = 22050


def trimmed(samples: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples) > np.abs(samples).max() * 0.01)
    return samples[loud[0] : loud[-1] + 1]


def spoken_word_by_word(piper: PiperSynthesizer, text: str) -> tuple[np.ndarray, list[TimedWord]]:
    parts, truth, at = [], [], 0.0
    pause = np.zeros(int(PAUSE_SECONDS * RATE), dtype=np.float32)
    for word in text.split():
        blocks = piper.synthesize(word, SynthesisOptions("en_US-joe-medium", "en", 1.0))
        samples = trimmed(np.concatenate([block.samples for block in blocks]))
        truth.append(TimedWord(word, at, at + len(samples) / RATE))
        parts += [samples, pause]
        at += (len(samples) + len(pause)) / RATE
    return np.concatenate([pause, *parts]), [
        TimedWord(w.word, w.start + PAUSE_SECONDS, w.end + PAUSE_SECONDS) for w in truth
    ]


async def heard(stub, audio: np.ndarray) -> list[TimedWord]:
    data = encode_audio(Pcm(audio, RATE), FORMATS["wav"])

    async def messages():
        yield stt_pb2.RecognizeRequest(
            config=stt_pb2.RecognitionConfig(
                model="faster-whisper", language="en", word_timestamps=True, vad_filter=False
            )
        )
        yield stt_pb2.RecognizeRequest(audio_content=data)

    reply = await stub.Recognize(messages())
    return [TimedWord(w.word, w.start_ms / 1000, w.end_ms / 1000) for s in reply.segments for w in s.words]


async def main() -> None:
    settings = SttSettings(port=0, log_json=False, log_level="WARNING")
    install_whisper_base(settings.models_dir)
    engines = build_engines(settings)
    server, port = await create_server(settings, engines)
    piper = PiperSynthesizer(PiperSettings())
    piper.load()
    starts, ends = [], []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = stt_pb2_grpc.SpeechToTextStub(channel)
        while not engines.recognizers.engines():
            await asyncio.sleep(0.1)
        for text in TEXTS:
            audio, truth = spoken_word_by_word(piper, text)
            timed = align(text, await heard(stub, audio), len(audio) / RATE)
            for predicted, true in zip(timed, truth, strict=True):
                starts.append(abs(predicted.start - true.start) * 1000)
                ends.append(abs(predicted.end - true.end) * 1000)
    await stop_server(server, grace=0)
    print(f"{len(starts)} words, Piper speech with known boundaries, aligned via Whisper tiny.en word times")
    for name, errors in (("start", starts), ("end", ends)):
        p90 = statistics.quantiles(errors, n=10)[-1]
        median = statistics.median(errors)
        print(f"  |error| of word {name:5}: median {median:5.0f} ms  p90 {p90:5.0f} ms  max {max(errors):5.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
