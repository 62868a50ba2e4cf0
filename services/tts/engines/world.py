"""`world-adapt`: "cloning" with the nearest built-in voice adapted by WORLD, named for what it is.

No zero-shot cloning weights can be had offline. This cloner measures the reference
speaker (d-vector, F0, spectral envelope; `speechmesh/speakers/world.py`), picks the built-in
voice of the base models whose d-vector lies closest, synthesizes the text with it, and
adapts the result toward the reference with WORLD. It reports the similarity of the
output and of the untouched base voice to the reference, so nobody mistakes it for more.
Built-in voices are profiled once, on the first clone (~9 s for Piper's Joe on 2 cores,
~94 s with Kokoro's five voices as well).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import numpy as np

from services.tts.cloner import CloneResult
from services.tts.language import detect_language
from services.tts.synthesizer import SynthesisOptions, Synthesizer, VoiceCard
from speechmesh.common import limits
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.audio.resample import resample
from speechmesh.common.audio.stretch import time_stretch
from speechmesh.common.errors import InvalidArgument, InvalidAudio, ModelUnavailable
from speechmesh.common.registry import EngineRegistry
from speechmesh.common.sentences import split_sentences
from speechmesh.speakers import SAMPLE_RATE as EMBEDDER_RATE
from speechmesh.speakers import world as cloning
from speechmesh.speakers.dvector import DVectorEmbedder

log = logging.getLogger(__name__)

MODEL_ID = "world-adapt"


class WorldCloner:
    def __init__(self, synthesizers: EngineRegistry[Synthesizer], base_models: Sequence[str], threads: int) -> None:
        self._synthesizers = synthesizers
        self._base_models = tuple(base_models)
        self._embedder = DVectorEmbedder(threads=threads)
        self._profiles: dict[str, tuple[Synthesizer, VoiceCard, cloning.VoiceProfile]] = {}
        self._profiled: set[str] = set()  # base models whose voices were profiled (or tried)
        self._lock = threading.Lock()

    def load(self) -> None:
        import pyworld  # noqa: F401 - fail at load, not at the first clone, when WORLD is missing

        self._embedder.load()

    def warm_up(self) -> None:
        """Nothing: profiling every base voice costs seconds, paid by the first clone."""

    def clone(self, reference: Pcm, text: str, language: str, speed: float) -> CloneResult:
        target = cloning.profile(reference, self._embedder)
        voices = self._voice_profiles()
        spoken = {code for _, card, _ in voices.values() for code in (card.language, *card.languages)}
        language = language or detect_language(text, spoken, "en" if "en" in spoken else next(iter(spoken), "en"))
        candidates = {key: entry for key, entry in voices.items() if entry[1].speaks(language)}
        if not candidates:
            raise InvalidArgument(
                f"No built-in voice to clone from speaks '{language}'; they speak {', '.join(sorted(spoken))}.",
                param="language",
            )
        key, _ = cloning.nearest_voice(target, {k: profile for k, (_, _, profile) in candidates.items()})
        engine, card, source = candidates[key]
        speech = _speak(engine, card, text, language, speed)
        adapted = cloning.adapt(speech, source, target)
        before = cloning.similarity(self._embed(speech), target.embedding)
        after = cloning.similarity(self._embed(adapted), target.embedding)
        # A reference that already sounds like a built-in voice is best served by that
        # voice as it is: adaptation is kept only where it measurably brings it closer.
        output = adapted if after > before else speech
        return CloneResult(output, card.model, card.id, language, max(after, before), before)

    def _embed(self, pcm: Pcm) -> np.ndarray:
        return self._embedder.embed(resample(pcm, EMBEDDER_RATE).samples)

    def _voice_profiles(self) -> dict[str, tuple[Synthesizer, VoiceCard, cloning.VoiceProfile]]:
        """Profiles of the base voices, each model's measured once it has loaded."""
        with self._lock:
            engines = self._synthesizers.engines()
            for model in self._base_models:
                if model in engines and model not in self._profiled:
                    self._profiled.add(model)
                    self._profile_voices(model, engines[model])
            if not self._profiles:
                for model in self._base_models:
                    self._synthesizers.get(model)  # ModelLoading / ModelUnavailable: why it is missing
                raise ModelUnavailable(f"world-adapt could not profile any voice of {', '.join(self._base_models)}")
            return dict(self._profiles)

    def _profile_voices(self, model: str, engine: Synthesizer) -> None:
        for card in engine.voices():
            if not card.speaks("en"):
                continue
            speech = _speak(engine, card, cloning.PROFILE_TEXT, "en", 1.0)
            try:
                profile = cloning.profile(speech, self._embedder)
            except InvalidAudio as error:
                # The voice's fault, not the reference's: leave it out, keep the rest.
                log.warning("cannot profile base voice %s/%s: %s", model, card.id, error)
                continue
            self._profiles[f"{model}/{card.id}"] = (engine, card, profile)


def _speak(engine: Synthesizer, card: VoiceCard, text: str, language: str, speed: float) -> Pcm:
    rendered = min(max(speed, limits.SPEED_MIN), limits.SPEED_MAX)
    options = SynthesisOptions(card.id, language, rendered)
    blocks = [
        pcm.samples for sentence in split_sentences(text, language) for pcm in engine.synthesize(sentence, options)
    ]
    if not sum(block.size for block in blocks):
        # Engines read punctuation or symbols alone ("...", "-") as nothing: no speech to adapt.
        raise InvalidArgument(f"'text' holds nothing the voice {card.id} can speak.", param="text")
    speech = Pcm(np.concatenate(blocks).astype(np.float32), card.sample_rate)
    return time_stretch(speech, speed / rendered)
