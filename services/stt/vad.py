"""The voice activity detector interface live recognition uses, and its frame size.

Whole files are VAD-filtered inside the Whisper engine; live streams need speech
probabilities frame by frame to know where an utterance ends.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from services.stt.recognizer import SAMPLE_RATE

# Silero scores 32 ms frames at 16 kHz.
FRAME_SAMPLES = 512
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE


class SpeechDetector(Protocol):
    def speech_probabilities(self, audio: np.ndarray) -> np.ndarray:
        """One speech probability per FRAME_SAMPLES of `audio` (float32 at SAMPLE_RATE, padded)."""
        ...
