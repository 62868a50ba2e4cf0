"""The Recognizer interface every STT engine implements, and the values it trades in.

Engines import neither gRPC nor the proto package: they take 16 kHz mono float32 PCM
and options and return a Transcript. Times are seconds from the start of the audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

# Every engine is fed audio at this rate; the service resamples uploads once.
SAMPLE_RATE = 16000

Task = Literal["transcribe", "translate"]


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float
    probability: float
    speaker: str = ""


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    speaker: str = ""
    # Decoder statistics (OpenAI's verbose_json reports them); 0 when unknown.
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    temperature: float = 0.0
    tokens: tuple[int, ...] = ()
    # ISO 639-1 language the segment was transcribed in (speakers may change language).
    language: str = ""


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    language_probability: float
    duration: float
    segments: tuple[Segment, ...] = field(default_factory=tuple)

    @property
    def words(self) -> list[Word]:
        return [word for segment in self.segments for word in segment.words]


@dataclass(frozen=True)
class RecognitionOptions:
    language: str = ""  # "" = detect
    task: Task = "transcribe"
    word_timestamps: bool = False
    vad_filter: bool = True
    prompt: str = ""
    temperature: float = 0.0


class Recognizer(Protocol):
    def load(self) -> None: ...

    def warm_up(self) -> None: ...

    def languages(self) -> Sequence[str]:
        """ISO 639-1 codes the model transcribes."""
        ...

    def recognize(self, audio: np.ndarray, options: RecognitionOptions) -> Transcript:
        """Transcribes `audio` (float32 mono at SAMPLE_RATE)."""
        ...
