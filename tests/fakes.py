"""Test doubles for runtime behaviour (load timing, slow or failing engines).

They produce silence, never speech: tests that check audio use the real engines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np

from services.tts.engine_set import TtsEngines
from services.tts.synthesizer import SynthesisOptions, VoiceCard
from speechmesh.common.audio import Pcm
from speechmesh.common.models import ModelCard, ModelKind, Tier
from speechmesh.common.registry import EngineRegistry, EngineSpec

RATE = 16_000


class ScriptedSynthesizer:
    """Loads when `release` is set; synthesizes silence slowly, or raises."""

    def __init__(
        self, release: threading.Event, synth_seconds: float = 0.0, error: Exception | None = None, blocks: int = 1
    ) -> None:
        self.release = release
        self.synth_seconds = synth_seconds
        self.error = error
        self.blocks = blocks
        self.produced = 0

    def load(self) -> None:
        self.release.wait(timeout=30)

    def warm_up(self) -> None:
        pass

    def voices(self) -> list[VoiceCard]:
        return [VoiceCard("fake-voice", "Fake", "fake", "en", "en-US", "neutral", RATE)]

    def synthesize(self, text: str, options: SynthesisOptions) -> Iterator[Pcm]:
        if self.error is not None:
            raise self.error
        for _ in range(self.blocks):
            time.sleep(self.synth_seconds)
            self.produced += 1
            yield Pcm(np.zeros(RATE // 10, dtype=np.float32), RATE)


def scripted_registry(engine: ScriptedSynthesizer) -> TtsEngines:
    """The TTS service's engines with `engine` as its one synthesizer and no cloner."""
    card = ModelCard("fake", "Fake", ModelKind.TTS, Tier.FREE, ("en",), supports_streaming=True)
    synthesizers = EngineRegistry([EngineSpec(card, factory=lambda: engine)], enabled=["fake"], default_model="fake")
    return TtsEngines(synthesizers, EngineRegistry([], enabled=[], default_model="world-adapt"))
