"""Dialogs of real people for diarization, built from Debian's Asterisk prompts: shared by
`tests/test_diarization_real.py` and `bench/diarization_real.py`.

The voices (docs/reference/real-speech-sources.md): Allison Smith (woman, en-US and es-MX),
June Wallack (woman, fr-CA), Carlo Flora (man, it-IT) and a Russian woman ("ru-woman" here; the
package does not name her), each reading the same IVR prompts, as
8 kHz WAV (telephone band) and 16 kHz G.722 (wideband), with their transcripts. A dialog
is prompts of 3-7 s read by alternating voices, cut to their speech (the files carry a
little silence at both ends) and joined with 0.3-0.8 s of silence. It is built at the
files' own rate and reaches the diarizer as the service would get it: encoded as a WAV,
decoded and resampled to 16 kHz by `decode_audio`.

The pyannote sample (a real phone call of two women, with an RTTM reference) is read from
`var/eval-audio/pyannote/` when it is there (`pyannote_sample()`; None otherwise).
"""

from __future__ import annotations

import functools
import gzip
import io
import re
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from speechmesh.common.audio.decode import decode_audio

if TYPE_CHECKING:  # pyannote.metrics is a dev dependency, imported by `score`
    from pyannote.core import Annotation

SOUNDS = Path("/usr/share/asterisk/sounds")
DOCS = Path("/usr/share/doc")
PYANNOTE_SAMPLE = Path(__file__).resolve().parent.parent / "var" / "eval-audio" / "pyannote"

Band = Literal["narrow", "wide"]
RATES: dict[Band, int] = {"narrow": 8000, "wide": 16000}
SUFFIXES: dict[Band, str] = {"narrow": ".wav", "wide": ".g722"}


@dataclass(frozen=True)
class Voice:
    folder: str
    language: str  # Whisper's code
    person: str  # who speaks: the reference's speaker label


VOICES = {
    "allison": Voice("en_US_f_Allison", "en", "allison"),
    "june": Voice("fr_CA_f_June", "fr", "june"),
    "carlo": Voice("it_IT_m_Carlo", "it", "carlo"),
    # The same woman reading Spanish: one speaker in two languages.
    "allison-es": Voice("es_MX_f_Allison", "es", "allison"),
    # A woman from ivrvoice.ru (the package does not name her); Asterisk ships no transcript
    # of her prompts, so her dialogs have no WER.
    "ru-woman": Voice("ru_RU_f_IvrvoiceRU", "ru", "ru-woman"),
}

# Prompts Allison, June and Carlo read in 3-5 s (after trimming; Allison's Spanish 4.5-7.6 s,
# the Russian woman 2.6-5.9 s), with a transcript in en, fr, it and es; a dialog takes its
# turns from this list in order, so no prompt repeats in it.
PROMPTS = (
    "auth-incorrect",
    "vm-nobox",
    "vm-rec-name",
    "demo-thanks",
    "privacy-unident",
    "vm-mailboxfull",
    "confbridge-pin",
    "vm-saveoper",
    "pbx-invalidpark",
    "vm-review-nonurgent",
    "conf-getconfno",
    "vm-newpassword",
)

# Seconds of silence between turns (cycled): 0.3-0.8 s, as in a call.
GAPS = (0.5, 0.35, 0.7, 0.45, 0.8, 0.3, 0.6, 0.4)


@dataclass(frozen=True)
class Turn:
    speaker: str
    start: float  # seconds
    end: float
    language: str
    text: str


@dataclass(frozen=True)
class Dialog:
    name: str
    band: Band
    rate: int  # the samples' rate: 8000 (telephone WAV) or 16000
    samples: np.ndarray  # float32 mono at `rate`
    turns: tuple[Turn, ...]

    @property
    def speakers(self) -> list[str]:
        return list(dict.fromkeys(turn.speaker for turn in self.turns))

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate

    def wav(self) -> bytes:
        """The dialog as a 16-bit WAV at its own rate: what a client would upload."""
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(self.rate)
            out.writeframes((np.clip(self.samples, -1, 1) * 32767).astype("<i2").tobytes())
        return buffer.getvalue()

    def audio(self) -> np.ndarray:
        """float32 at 16 kHz, decoded and resampled from `wav()` as the STT pipeline does."""
        return decode_audio(self.wav(), sample_rate=16000).samples


@functools.cache
def transcripts(language: str) -> dict[str, str]:
    """Prompt name -> text, from the Asterisk transcript file of `language` (tones skipped,
    production notes in parentheses and quotes dropped)."""
    path = DOCS / f"asterisk-core-sounds-{language}" / f"core-sounds-{language}.txt.gz"
    texts: dict[str, str] = {}
    if not path.is_file():  # Russian: the prompts come without a transcript
        return texts
    with gzip.open(path, "rt", encoding="utf-8-sig") as lines:
        for line in lines:
            name, _, text = line.partition(":")
            text = re.sub(r"\([^)]*\)", " ", text).strip().strip('“”"').strip()
            if text and not line.startswith(";") and not text.startswith("["):
                texts[name.strip()] = text
    return texts


@functools.cache
def _prompt(voice: str, name: str, band: Band) -> np.ndarray:
    path = SOUNDS / VOICES[voice].folder / f"{name}{SUFFIXES[band]}"
    # Raw G.722 has no header: FFmpeg needs the file's name to know the format.
    samples = _g722(path) if band == "wide" else decode_audio(path.read_bytes(), sample_rate=RATES[band]).samples
    return trim(samples, RATES[band])


def _g722(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        blocks = [
            out.to_ndarray().reshape(-1) for frame in container.decode(audio=0) for out in resampler.resample(frame)
        ]
    return np.concatenate(blocks).astype(np.float32)


def prompt(voice: str, name: str, band: Band) -> np.ndarray:
    """One prompt of `voice`, cut to its speech, float32 at the band's rate."""
    return _prompt(voice, name, band).copy()


def trim(samples: np.ndarray, rate: int, floor_db: float = 40.0, margin: float = 0.05) -> np.ndarray:
    """The samples from the first to the last 20 ms frame within `floor_db` of the loudest,
    with `margin` seconds kept around: the reference turn is then where the speech is."""
    frame = rate // 50
    frames = len(samples) // frame
    energy = (samples[: frames * frame].reshape(frames, frame) ** 2).mean(axis=1) + 1e-12
    loud = np.flatnonzero(10 * np.log10(energy / energy.max()) > -floor_db)
    keep = round(margin * rate)
    return samples[max(0, loud[0] * frame - keep) : min(len(samples), (loud[-1] + 1) * frame + keep)]


def dialog(voices: Sequence[str], band: Band, name: str = "", prompts: Sequence[str] = PROMPTS) -> Dialog:
    """Turns read by `voices` in this order (a voice may come back), each a different prompt
    from `prompts`, with GAPS between them."""
    rate = RATES[band]
    parts: list[np.ndarray] = []
    turns: list[Turn] = []
    t = 0
    for i, voice in enumerate(voices):
        if i:
            parts.append(np.zeros(round(GAPS[(i - 1) % len(GAPS)] * rate), np.float32))
            t += len(parts[-1])
        parts.append(prompt(voice, prompts[i], band))
        language = VOICES[voice].language
        text = transcripts(language).get(prompts[i], "")
        turns.append(Turn(VOICES[voice].person, t / rate, (t + len(parts[-1])) / rate, language, text))
        t += len(parts[-1])
    return Dialog(name or "+".join(dict.fromkeys(voices)), band, rate, np.concatenate(parts), tuple(turns))


# The evaluation set, per band: two women (en, fr), a woman and a man (en, it), three people,
# three women (en, fr, ru), and one woman alone, in one language and in two (what must stay
# one speaker).
_THREE_TURNS = (0, 1, 2, 1, 0, 2, 0, 1, 2)  # who speaks each turn of a three-person dialog
DIALOGS: dict[str, tuple[str, ...]] = {
    "allison+june": ("allison", "june") * 3,
    "allison+carlo": ("allison", "carlo") * 3,
    "allison+june+carlo": tuple(("allison", "june", "carlo")[i] for i in _THREE_TURNS),
    "allison+june+ru-woman": tuple(("allison", "june", "ru-woman")[i] for i in _THREE_TURNS),
    "allison alone": ("allison",) * 4,
    "allison en+es": ("allison", "allison-es") * 3,
}


def evaluation_set(bands: Sequence[Band] = ("narrow", "wide")) -> list[Dialog]:
    return [dialog(voices, band, name) for band in bands for name, voices in DIALOGS.items()]


def pyannote_sample() -> Dialog | None:
    """pyannote.audio's sample (30 s, two women on the phone, 16 kHz file of a telephone-band
    call; `make eval-audio` fetches it), turns from its RTTM and text from its STM."""
    wav, rttm = PYANNOTE_SAMPLE / "sample.wav", PYANNOTE_SAMPLE / "sample.rttm"
    if not (wav.is_file() and rttm.is_file()):
        return None
    pcm = decode_audio(wav.read_bytes())
    turns = []
    for line in rttm.read_text().splitlines():
        fields = line.split()
        start, duration = float(fields[3]), float(fields[4])
        turns.append(Turn(fields[7], start, start + duration, "en", ""))
    return Dialog("pyannote sample", "narrow", pcm.sample_rate, pcm.samples, tuple(turns))


def pyannote_text() -> str:
    """The sample's words, in order (STM: file channel speaker start end words)."""
    lines = (PYANNOTE_SAMPLE / "sample.stm").read_text().splitlines()
    return " ".join(line.split(maxsplit=5)[5] for line in lines if len(line.split(maxsplit=5)) == 6)


# ---------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Score:
    der: float  # diarization error rate, 0.25 s collar
    jer: float  # Jaccard error rate, same collar
    confusion: float  # the speaker-confusion part of DER (missed and false speech come from word times)
    speakers: int  # speakers found

    def __str__(self) -> str:
        return f"DER {self.der:6.1%} (confusion {self.confusion:5.1%})  JER {self.jer:6.1%}  speakers {self.speakers}"


def reference(dialog: Dialog) -> Annotation:
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=dialog.name)
    for i, turn in enumerate(dialog.turns):
        annotation[Segment(turn.start, turn.end), i] = turn.speaker
    return annotation


def hypothesis(segments: Sequence[tuple[float, float, str]], uri: str) -> Annotation:
    """An annotation from diarized (start, end, speaker) spans."""
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    for i, (start, end, speaker) in enumerate(segments):
        if end > start:
            annotation[Segment(start, end), i] = speaker
    return annotation


def score(dialog: Dialog, segments: Sequence[tuple[float, float, str]], collar: float = 0.25) -> Score:
    """DER and JER of diarized spans against the dialog's turns (pyannote.metrics: `collar`
    seconds around each reference boundary are not scored, overlap is)."""
    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    ref, hyp = reference(dialog), hypothesis(segments, dialog.name)
    uem = Timeline([Segment(0.0, max(dialog.seconds, *(end for _, end, _ in segments)))], uri=dialog.name)
    parts = DiarizationErrorRate(collar=collar)(ref, hyp, uem=uem, detailed=True)
    jer = JaccardErrorRate(collar=collar)(ref, hyp, uem=uem)
    confusion = parts["confusion"] / parts["total"] if parts["total"] else 0.0
    return Score(float(parts["diarization error rate"]), float(jer), float(confusion), len(hyp.labels()))
