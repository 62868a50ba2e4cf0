"""eSpeak NG (formant synthesis) engine: robotic but intelligible speech in ~100 languages.

Runs the Debian `espeak-ng` command, one process per call, with the text on stdin (never
in argv, where a leading '-' would read as an option) and a WAV written to a temporary
file (whose header states its true length), decoded with PyAV. The CLI is used instead
of libespeak-ng through ctypes because the library keeps process-global state (one
voice, one callback) that concurrent requests would trample; a process per call is
isolated and costs tens of milliseconds a sentence.

Voices: for every language voice the installed espeak-ng lists (`espeak-ng --voices`),
a male and a female one made with espeak's `+m1`/`+f5` variants. Ids are stable:
`espeak-<espeak language code, lower case>-<m|f>`, e.g. `espeak-en-us-m`, `espeak-de-f`,
`espeak-fr-fr-f`, `espeak-cmn-m` (Mandarin, language "zh").
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.tts.engines.command import find_command, run_command
from services.tts.settings import EspeakSettings
from services.tts.synthesizer import Gender, SynthesisOptions, VoiceCard
from speechmesh.common.audio.decode import decode_audio
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.errors import ModelUnavailable

MODEL_ID = "espeak"
# espeak's own default rate; `speed` scales it (0.5-2.0 -> 88-350 wpm, inside its 80-450 range).
BASE_WPM = 175
# The variants Whisper understood best (mean WER over 3 sentences each in en/de/fr/es):
# m1 0.38 (m2-m7: 0.38-0.43), f5 0.32 (f1-f4: 0.38-0.57). espeak's own default is m1-like.
_VARIANTS: dict[str, tuple[str, Gender]] = {"m": ("m1", "male"), "f": ("f5", "female")}
# Language codes espeak names by ISO 639-3 where an ISO 639-1 code exists.
_ISO_639_1 = {"cmn": "zh"}
# Constructed languages kept: those with an ISO 639-1 code (Esperanto, Interlingua, Ido).
# The rest of espeak's "art" family (Klingon, Quenya, Sindarin, Lojban, ...) is left out.
_CONSTRUCTED_KEPT = {"eo", "ia", "io"}
# The regional voice a language's requests get when they name no voice.
_DEFAULT_REGION = {"en": "en-us", "fr": "fr-fr", "zh": "cmn"}


@dataclass(frozen=True)
class EspeakVoice:
    code: str  # espeak's language code, e.g. "en-us"
    file: str  # its voice file, e.g. "gmw/en-US"; `-v` takes it
    language: str  # ISO 639-1 where one exists
    locale: str  # BCP 47, e.g. "en-US"
    name: str  # espeak's name, e.g. "English (America)"


class EspeakSynthesizer:
    def __init__(self, settings: EspeakSettings) -> None:
        self._settings = settings
        self._executable = ""
        self._cards: dict[str, VoiceCard] = {}
        self._espeak: dict[str, tuple[str, str]] = {}  # voice id -> (voice file, variant)

    def load(self) -> None:
        self._executable = executable = find_command(self._settings.executable, "espeak-ng")
        listing = sorted(parse_voices(self._run(["--voices"], b"").decode("utf-8", "replace")), key=_order)
        if not listing:
            raise ModelUnavailable("'espeak-ng --voices' listed no language voices", detail=executable)
        # espeak-ng always writes 22.05 kHz, but ask the binary rather than assume it.
        rate = decode_audio(self._synthesize_file(listing[0].file, "m1", 1.0, "a")).sample_rate
        for voice in listing:
            for suffix, (variant, gender) in _VARIANTS.items():
                card = VoiceCard(
                    id=f"espeak-{voice.code}-{suffix}",
                    name=f"{voice.name}, {gender}",
                    model=MODEL_ID,
                    language=voice.language,
                    locale=voice.locale,
                    gender=gender,
                    sample_rate=rate,
                )
                self._cards[card.id] = card
                self._espeak[card.id] = (voice.file, variant)

    def warm_up(self) -> None:
        # Nothing stays loaded between processes; this only pulls the binary and data into the page cache.
        for _ in self.synthesize("Hello.", SynthesisOptions("espeak-en-us-m", "en", 1.0)):
            pass

    def voices(self) -> Sequence[VoiceCard]:
        return list(self._cards.values())

    def synthesize(self, text: str, options: SynthesisOptions) -> Iterator[Pcm]:
        file, variant = self._espeak[options.voice]
        yield decode_audio(self._synthesize_file(file, variant, options.speed, text))

    def _synthesize_file(self, file: str, variant: str, speed: float, text: str) -> bytes:
        # espeak reads "[[...]]" as raw phoneme mnemonics even in plain-text mode; break the
        # brackets apart so request text is always read as text.
        text = text.replace("[[", "[ [")
        with tempfile.TemporaryDirectory(prefix="espeak-") as folder:
            path = Path(folder) / "speech.wav"
            wpm = round(BASE_WPM * speed)
            # -v names the voice file, not the language code: "fr-fr+f2" silently drops the
            # variant (it is a language alias, not a voice), "roa/fr+f2" applies it.
            # -b 1: the input is UTF-8; -w: a WAV file whose header states its true length.
            self._run(["-b", "1", "-v", f"{file}+{variant}", "-s", str(wpm), "-w", str(path), "--stdin"], text)
            return path.read_bytes()

    def _run(self, arguments: list[str], text: str | bytes) -> bytes:
        data = text.encode("utf-8") if isinstance(text, str) else text
        return run_command([self._executable, *arguments], data, self._settings.timeout_seconds)


def parse_voices(listing: str) -> list[EspeakVoice]:
    """The language voices of an `espeak-ng --voices` listing worth offering, one per code.

    Columns: Pty, Language, Age/Gender, VoiceName, File, Other languages. Skipped:
    fictional/constructed languages without an ISO 639-1 code, and voices that expect
    romanized input (`cmn-latn-pinyin`, `fa-latn`, Cantonese in Jyutping).
    """
    voices: dict[str, EspeakVoice] = {}
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5:
            continue
        code, name, file = fields[1].lower(), fields[3], fields[4]
        family = file.split("/")[0] if "/" in file else ""
        if "latn" in code or "latn" in file.lower() or code in voices:
            continue
        if family == "art" and code not in _CONSTRUCTED_KEPT:
            continue
        subtags = code.split("-")
        language = _ISO_639_1.get(subtags[0], subtags[0])
        voices[code] = EspeakVoice(
            code=code,
            file=file,
            language=language,
            locale="-".join([language, *(_subtag(tag) for tag in subtags[1:])]),
            name=name.replace("_", " "),
        )
    return list(voices.values())


def _subtag(tag: str) -> str:
    # BCP 47 casing: regions upper case (US, 419), scripts title case (Qaaa), the rest lower.
    if len(tag) == 2 and tag.isalpha():
        return tag.upper()
    if len(tag) == 4 and tag.isalpha():
        return tag.title()
    return tag


def _order(voice: EspeakVoice) -> tuple[str, int, str]:
    # A language's default voice first: the pipeline takes the first voice that speaks it.
    preferred = _DEFAULT_REGION.get(voice.language, voice.language)
    return voice.language, voice.code != preferred, voice.code
