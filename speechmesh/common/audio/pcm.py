"""In-memory PCM audio: float32 samples in [-1, 1] with their sample rate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pcm:
    """Samples shaped (frames,) for mono or (frames, channels)."""

    samples: np.ndarray
    sample_rate: int

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        return 1 if self.samples.ndim == 1 else int(self.samples.shape[1])

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.sample_rate

    def mono(self) -> np.ndarray:
        """float32 samples shaped (frames,): the channels averaged."""
        samples = np.asarray(self.samples, np.float32)
        return samples if samples.ndim == 1 else samples.mean(axis=1)

    @classmethod
    def from_linear16(cls, data: bytes, sample_rate: int) -> Pcm:
        """Mono PCM from raw signed 16-bit little-endian bytes: the inverse of `to_int16`."""
        return cls(np.frombuffer(data, "<i2").astype(np.float32) / 32768.0, sample_rate)

    def to_int16(self) -> np.ndarray:
        """Interleaved-ready int16 array shaped (frames, channels)."""
        samples = self.samples if self.samples.ndim == 2 else self.samples[:, None]
        # FFmpeg decodes s16 as x / 32768: scaled back the same way, 16-bit audio survives
        # a decode and an encode bit for bit.
        return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype(np.int16)
