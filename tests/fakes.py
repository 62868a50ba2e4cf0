"""Test doubles for runtime behaviour (load timing, slow or failing engines, cancellation).

They produce silence, never speech: tests that check audio use the real engines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import NoReturn

import numpy as np

from services.stt.diarization import Diarizer
from services.stt.engine_set import SttEngines
from services.stt.recognizer import RecognitionOptions, Recognizer, Transcript
from services.tts.cloner import CloneResult, VoiceCloner
from services.tts.engine_set import TtsEngines
from services.tts.synthesizer import SynthesisOptions, VoiceCard
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.cancel import checkpoint
from speechmesh.common.models import ModelCard, ModelKind, Tier
from speechmesh.common.registry import EngineRegistry, EngineSpec

RATE = 16_000


class ScriptedSynthesizer:
    """Loads when `release` is set; synthesizes silence slowly, or raises. A call sets
    `entered` when it starts, waits for `hold` (if given) before its first block, and sets
    `ended` when it is done or closed, so tests wait on events instead of sleeping."""

    def __init__(
        self,
        release: threading.Event,
        synth_seconds: float = 0.0,
        error: Exception | None = None,
        blocks: int = 1,
        hold: threading.Event | None = None,
    ) -> None:
        self.release = release
        self.synth_seconds = synth_seconds
        self.error = error
        self.blocks = blocks
        self.hold = hold
        self.produced = 0
        self.entered = threading.Event()
        self.ended = threading.Event()

    def load(self) -> None:
        self.release.wait(timeout=30)

    def warm_up(self) -> None:
        pass

    def voices(self) -> list[VoiceCard]:
        return [VoiceCard("fake-voice", "Fake", "fake", "en", "en-US", "neutral", RATE)]

    def synthesize(self, text: str, options: SynthesisOptions) -> Iterator[Pcm]:
        self.entered.set()
        try:
            if self.error is not None:
                raise self.error
            if self.hold is not None:
                self.hold.wait(timeout=30)
            for _ in range(self.blocks):
                time.sleep(self.synth_seconds)
                self.produced += 1
                yield Pcm(np.zeros(RATE // 10, dtype=np.float32), RATE)
        finally:
            self.ended.set()


class SteppedWork:
    """Work in `steps` steps of `step_seconds`, with a cancellation checkpoint before each,
    as the real engines check between sentences, segments or stages; `done` counts the
    steps that ran, so a test sees how long work went on after its caller left."""

    def __init__(self, steps: int = 0, step_seconds: float = 0.0) -> None:
        self.steps = steps
        self.step_seconds = step_seconds
        self.done = 0

    def load(self) -> None:
        pass

    def warm_up(self) -> None:
        pass

    def run(self) -> None:
        for _ in range(self.steps):
            checkpoint()
            time.sleep(self.step_seconds)
            self.done += 1


class ScriptedRecognizer(SteppedWork):
    """Hears nothing; records the length of the audio it was given."""

    def __init__(self, steps: int = 0, step_seconds: float = 0.0) -> None:
        super().__init__(steps, step_seconds)
        self.heard: list[float] = []  # seconds of audio per call

    def languages(self) -> list[str]:
        return ["en"]

    def recognize(self, audio: np.ndarray, options: RecognitionOptions) -> Transcript:
        self.heard.append(audio.size / RATE)
        self.run()
        return Transcript("", "en", 1.0, audio.size / RATE)


class ScriptedCloner(SteppedWork):
    """Answers a second of silence; records the length of each reference it was given."""

    def __init__(self, steps: int = 0, step_seconds: float = 0.0) -> None:
        super().__init__(steps, step_seconds)
        self.references: list[float] = []  # seconds of reference per call

    def clone(self, reference: Pcm, text: str, language: str, speed: float) -> CloneResult:
        self.references.append(reference.duration_seconds)
        self.run()
        return CloneResult(Pcm(np.zeros(RATE, np.float32), RATE), "fake", "fake-voice", language or "en", 0.5, 0.4)


def scripted_registry(
    engine: ScriptedSynthesizer, cloner: VoiceCloner | None = None, tier: Tier = Tier.FREE
) -> TtsEngines:
    """The TTS service's engines with `engine` as its one synthesizer, model "fake" of `tier`,
    and `cloner` (if given) as its one cloner, "world-adapt"."""
    card = ModelCard("fake", "Fake", ModelKind.TTS, tier, ("en",), supports_streaming=True)
    synthesizers = EngineRegistry([EngineSpec(card, factory=lambda: engine)], enabled=["fake"], default_model="fake")
    cloners: list[EngineSpec[VoiceCloner]] = []
    if cloner is not None:
        clone_card = ModelCard("world-adapt", "Fake cloner", ModelKind.TTS, Tier.FREE, ("en",), supports_cloning=True)
        cloners.append(EngineSpec(clone_card, factory=lambda: cloner))
    enabled = [spec.card.id for spec in cloners]
    return TtsEngines(synthesizers, EngineRegistry(cloners, enabled=enabled, default_model="world-adapt"))


def _absent() -> NoReturn:
    raise ImportError("not part of this test double")


def scripted_stt_engines(recognizer: ScriptedRecognizer, diarizer: Callable[[], Diarizer] = _absent) -> SttEngines:
    """The STT service's engines with `recognizer` as its one model, "whisper" (no VAD;
    diarization from `diarizer`, by default none)."""
    card = ModelCard("whisper", "Fake", ModelKind.STT, Tier.FREE, ("en",))
    spec = EngineSpec[Recognizer](card, factory=lambda: recognizer)
    return SttEngines(EngineRegistry([spec], enabled=["whisper"], default_model="whisper"), diarizer, _absent)


class ToneEmbedder:
    """Stands in for a model on audio whose sample values name the speaker (1.0, 2.0, ...):
    a clip's embedding is the one-hot of its speaker, so clips of one speaker are identical."""

    def __init__(self) -> None:
        self.calls = 0

    def load(self) -> None:
        pass

    def embed(self, audio: np.ndarray) -> np.ndarray:
        return self.embed_many([audio])[0]

    def embed_many(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        self.calls += 1
        rows = np.zeros((len(clips), 8), np.float32)
        for row, clip in zip(rows, clips, strict=True):
            row[round(float(np.median(clip)))] = 1.0
        return rows
