"""Silero VAD, the ONNX model faster-whisper ships, scoring live audio frame by frame."""

from __future__ import annotations

import numpy as np

from services.stt.vad import FRAME_SAMPLES


class SileroDetector:
    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model

        self._model = get_vad_model()

    def speech_probabilities(self, audio: np.ndarray) -> np.ndarray:
        if audio.size == 0:
            return np.zeros(0, dtype=np.float32)
        padded = np.pad(audio.astype(np.float32, copy=False), (0, -audio.size % FRAME_SAMPLES))
        return np.asarray(self._model(padded), dtype=np.float32).reshape(-1)
