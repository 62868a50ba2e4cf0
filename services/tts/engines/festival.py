"""Festival engine: two US English voices from Debian's festival packages.

`festival-us-slt` is CMU ARCTIC SLT as an HTS (statistical parametric) voice from
`festvox-us-slt-hts`, female; `festival-kal` is the KAL diphone voice from
`festvox-kallpc16k`, male. Each call runs Festival's `text2wave` script: the text goes
in a temporary file (text2wave reads files, and a file keeps request text out of argv
and out of the Scheme we evaluate), the WAV comes back on a temporary file too.
"""

from __future__ import annotations

import tempfile
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.tts.engines.command import find_command, run_command
from services.tts.settings import FestivalSettings
from services.tts.synthesizer import Gender, SynthesisOptions, VoiceCard
from speechmesh.common.audio.decode import decode_audio
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.errors import ModelUnavailable

MODEL_ID = "festival"


@dataclass(frozen=True)
class FestivalVoice:
    id: str
    name: str
    gender: Gender
    select: str  # the Scheme function the voice package defines
    package: str  # the Debian package that ships it
    # Scheme that sets the speaking rate from {speed}: HTS voices ignore Duration_Stretch
    # (their durations come from the HTS model), but hts_engine's "-r" scales them.
    rate: str


VOICES = (
    FestivalVoice(
        id="festival-us-slt",
        name="SLT (US, HTS)",
        gender="female",
        select="(voice_cmu_us_slt_arctic_hts)",
        package="festvox-us-slt-hts",
        rate='(set! hts_engine_params (append hts_engine_params (list (list "-r" {speed}))))',
    ),
    FestivalVoice(
        id="festival-kal",
        name="Kal (US, diphone)",
        gender="male",
        select="(voice_kal_diphone)",
        package="festvox-kallpc16k",
        rate="(Parameter.set 'Duration_Stretch {stretch})",
    ),
)
# Typographic punctuation Festival would otherwise drop or spell out.
_ASCII_PUNCTUATION = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": ", ", "\u2026": "..."}
)


class FestivalSynthesizer:
    def __init__(self, settings: FestivalSettings) -> None:
        self._settings = settings
        self._executable = ""
        self._voices = {voice.id: voice for voice in VOICES}
        self._cards: dict[str, VoiceCard] = {}

    def load(self) -> None:
        self._executable = find_command(self._settings.executable, "festival")
        # A missing voice package only shows when its select function is called: synthesize
        # a word with each voice, which also tells the sample rate it writes (32 / 16 kHz).
        for voice in VOICES:
            try:
                rate = decode_audio(self._text2wave(voice, b"Hello.", 1.0)).sample_rate
            except RuntimeError as error:
                reason = f"voice {voice.id} does not run (Debian package {voice.package})"
                raise ModelUnavailable(reason, detail=str(error)) from error
            self._cards[voice.id] = VoiceCard(
                id=voice.id,
                name=voice.name,
                model=MODEL_ID,
                language="en",
                locale="en-US",
                gender=voice.gender,
                sample_rate=rate,
            )

    def warm_up(self) -> None:
        pass  # load() already ran every voice once; no state survives between processes

    def voices(self) -> Sequence[VoiceCard]:
        return list(self._cards.values())

    def synthesize(self, text: str, options: SynthesisOptions) -> Iterator[Pcm]:
        readable = _ascii(text)
        # Festival writes an empty file for text with nothing to say, and the diphone voice
        # crashes (SIGSEGV) on punctuation alone ("..."): such text is silence, not an error.
        if not any(chr(byte).isalnum() for byte in readable):
            return
        data = self._text2wave(self._voices[options.voice], readable, options.speed)
        if data:
            yield decode_audio(data)

    def _text2wave(self, voice: FestivalVoice, text: bytes, speed: float) -> bytes:
        rate = voice.rate.format(speed=f"{speed:.4f}", stretch=f"{1 / speed:.4f}")
        with tempfile.TemporaryDirectory(prefix="festival-") as folder:
            source, target = Path(folder) / "text.txt", Path(folder) / "speech.wav"
            source.write_bytes(text)
            arguments = [self._executable, "-eval", voice.select, "-eval", rate, "-o", str(target), str(source)]
            run_command(arguments, b"", self._settings.timeout_seconds)
            if not target.is_file():
                raise RuntimeError(f"{self._executable} wrote no audio for {voice.id}")
            return target.read_bytes()


def _ascii(text: str) -> bytes:
    """Text as Festival's English front end reads it: ASCII, accents dropped ("café" -> "cafe").

    Festival takes 8-bit text, and a Latin-1 "é" reaches its lexicon as an unknown symbol
    ("café" was heard as "calf"); letters with no ASCII base (Greek, CJK) are left out.
    """
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII_PUNCTUATION))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).encode("ascii", "ignore")
