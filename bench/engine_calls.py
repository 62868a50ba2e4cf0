"""The direct engine calls the benches compare the mesh against: the same engine object the
service runs, called in the bench's own process with the service's settings, so what is left
between the two is the mesh (HTTP, gRPC, chunking, admission).

Shared by bench/tts_overhead.py, bench/stt_overhead.py and bench/load.py. stt_overhead.py
calls faster-whisper's `WhisperModel.transcribe` itself; load.py calls the STT service's own
engine object, so it follows the service's decoding when that changes.
"""

from __future__ import annotations

import time
from typing import Any

from services.stt.recognizer import RecognitionOptions, Recognizer
from services.stt.registry import build_registry as build_stt_registry
from services.stt.settings import SttSettings
from services.tts.registry import build_registry
from services.tts.settings import TtsSettings
from services.tts.synthesizer import SynthesisOptions, Synthesizer
from speechmesh.common.audio.decode import decode_audio
from speechmesh.common.audio.encode import StreamEncoder
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.sentences import split_sentences

# The voices the TTS benches speak with, one per engine.
VOICES = {
    "piper": "en_US-joe-medium",
    "kokoro": "jm_kumo",
    "espeak": "espeak-en-us-m",
    "festival": "festival-us-slt",
}


def load_synthesizers(models: list[str]) -> dict[str, Synthesizer]:
    """These TTS engines loaded and warmed up, as the service builds them (no cloners)."""
    registry = build_registry(TtsSettings(engines=models, cloners=[], log_json=False, log_level="WARNING"))
    registry.load()
    return registry.engines()


def sample_rate(engine: Synthesizer, voice: str) -> int:
    return next(card.sample_rate for card in engine.voices() if card.id == voice)


def synthesize(engine: Synthesizer, voice: str, text: str, audio_format: str = "wav") -> tuple[float, float]:
    """(wall seconds, audio seconds) of what the service does for one request: sentence
    split, engine synthesis, the same encoder."""
    started = time.perf_counter()
    encoder = StreamEncoder(FORMATS[audio_format], sample_rate(engine, voice), streaming=False)
    for sentence in split_sentences(text, "en"):
        for pcm in engine.synthesize(sentence, SynthesisOptions(voice, "en", 1.0)):
            encoder.feed(pcm)
    encoder.finish()
    return time.perf_counter() - started, encoder.duration_seconds


def load_recognizer(settings: SttSettings, model: str) -> Recognizer:
    """The STT engine serving `model`, loaded and warmed up as the service builds it (the
    service's decoding, batched or sequential, comes with it)."""
    registry = build_stt_registry(settings.model_copy(update={"engines": [model]}))
    registry.load()
    return registry.engines()[model]


def recognize(recognizer: Recognizer, data: bytes) -> float:
    """Wall seconds of what the service does for one short file (one window, no diarization):
    decode to 16 kHz, then the engine, language detected, VAD on."""
    started = time.perf_counter()
    recognizer.recognize(decode_audio(data, sample_rate=16000).samples, RecognitionOptions())
    return time.perf_counter() - started


def whisper_model(settings: SttSettings, path: str) -> Any:
    """A faster-whisper model from `path` with the service's device, compute type and threads."""
    from faster_whisper import WhisperModel

    whisper = settings.whisper
    return WhisperModel(path, device=whisper.device, compute_type=whisper.compute_type, cpu_threads=whisper.threads)


def transcribe(model: Any, data: bytes, beam_size: int) -> float:
    """Wall seconds of what the service does for one file: PyAV decode to 16 kHz, then
    faster-whisper with the service's beam and Silero VAD, every segment read."""
    started = time.perf_counter()
    audio = decode_audio(data, sample_rate=16000).samples
    segments, _ = model.transcribe(audio, beam_size=beam_size, vad_filter=True)
    list(segments)
    return time.perf_counter() - started
