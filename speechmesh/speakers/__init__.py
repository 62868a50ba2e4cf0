"""The SpeakerEmbedder interface, shared by STT diarization and TTS voice cloning.

An embedder maps a clip of speech to a point where clips of one voice lie close together
and clips of different voices far apart (cosine distance), so clustering the points of a
recording finds who spoke when, and the nearest built-in voice to a reference is the one a
clone starts from. Embedders import no gRPC. `campplus.py` (CAM++) is diarization's,
`dvector.py` cloning's and voice conversion's (and diarization's other choice).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

# Every embedder takes 16 kHz mono float32.
SAMPLE_RATE = 16000


class SpeakerEmbedder(Protocol):
    def load(self) -> None: ...

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """The L2-normalised float32 embedding of `audio` (float32 mono at SAMPLE_RATE)."""
        ...

    def embed_many(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """One L2-normalised row per clip, shape (len(clips), dim); cheaper than a loop of `embed`."""
        ...
