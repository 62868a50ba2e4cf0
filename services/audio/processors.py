"""The processor kinds of the audio service, one small Protocol each.

Engines implement these on numpy arrays and know nothing of gRPC, files or codecs: the
pipeline (`services/audio/pipeline.py`) decodes, resamples to the engine's rate, cuts long
audio into overlapping segments, calls the engine per segment and encodes what comes back.
Audio is float32: mono arrays shaped (frames,), multichannel ones (frames, channels).
Every engine is also a registry `Engine` (`load`, `warm_up`), so a missing package or
missing weights list its model as unavailable instead of failing the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from speechmesh.common.audio.pcm import Pcm
from speechmesh.speakers.world import VoiceProfile


class Denoiser(Protocol):
    # The rate the model works at; the pipeline resamples to it and back.
    sample_rate: int

    def load(self) -> None: ...

    def warm_up(self) -> None: ...

    def denoise(self, audio: np.ndarray, strength: int) -> np.ndarray:
        """Mono speech at `sample_rate` without its noise: same length and aligned with the
        input (a model's own delay is taken out). `strength` 1 (light) - 3 (strong)."""
        ...


class Dereverberator(Protocol):
    def load(self) -> None: ...

    def warm_up(self) -> None: ...

    def dereverb(self, audio: np.ndarray, sample_rate: int, kind: str, intensity: int) -> np.ndarray:
        """(frames, channels) at any rate the pipeline accepts (8-48 kHz) without its
        reverberation: same shape. `kind` "echo", "reverb" or "both"; `intensity` 1 (light)
        - 5 (strong)."""
        ...


class Separator(Protocol):
    sample_rate: int
    # The stem counts this model can really make.
    stem_counts: tuple[int, ...]

    def load(self) -> None: ...

    def warm_up(self) -> None: ...

    def separate(self, audio: np.ndarray, stems: int) -> dict[str, np.ndarray]:
        """(frames, channels) at `sample_rate` -> {stem name: (frames, channels)}, in the
        order the stems are sent, every stem the input's shape. `stems` is one of `stem_counts`."""
        ...


@dataclass(frozen=True)
class Analysis:
    key: str  # tonic: "C", "F#", ...
    scale: str  # "Major" or "Minor"
    bpm: float
    time_signature: str  # "4/4" or "3/4"
    camelot: str  # "8B"
    compatible_keys: tuple[str, ...]  # "C Major", "G Major", ...


class Analyzer(Protocol):
    # The rate the pipeline decodes to for it.
    sample_rate: int

    def load(self) -> None: ...

    def warm_up(self) -> None: ...

    def analyze(self, audio: np.ndarray, sample_rate: int) -> Analysis:
        """Key, scale, tempo and meter of mono music. Raises InvalidAudio for silence or
        audio with no tonal or rhythmic content to measure (never a made-up key)."""
        ...


@dataclass(frozen=True)
class Conversion:
    pcm: Pcm
    # d-vector cosine similarity to the target voice: of the input, and of the output.
    similarity_before: float
    similarity_after: float


class VoiceConverter(Protocol):
    def load(self) -> None: ...

    def warm_up(self) -> None: ...

    def profile(self, speech: Pcm) -> VoiceProfile:
        """What conversion needs to know of a voice, measured from its speech."""
        ...

    def convert(self, speech: Pcm, source: VoiceProfile, target: VoiceProfile) -> Pcm:
        """`speech` (one segment of the speaker `source` was measured from) moved toward
        `target`: mono, same rate and length, the words kept."""
        ...

    def similarity(self, speech: Pcm, target: VoiceProfile) -> float:
        """d-vector cosine similarity of `speech` to `target`."""
        ...


class Restyler(Protocol):
    def load(self) -> None: ...

    def warm_up(self) -> None: ...

    def restyle(self, speech: Pcm, emotion: str) -> Pcm:
        """`speech` delivered with `emotion` ("neutral", "happy", "sad", "angry",
        "excited"): mono, same rate and length (tempo is changed after, by the pipeline)."""
        ...

    def tempo(self, emotion: str) -> float:
        """The pace `emotion` adds (1.1 = 10 % faster), applied with the caller's speed."""
        ...
