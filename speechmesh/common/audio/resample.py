"""Resampling: raw PCM arriving in arbitrary chunks, or a whole buffer, to float32 mono.

Live audio is signed 16-bit little-endian, interleaved, cut wherever the network cut
it (even mid-sample). FFmpeg's resampler keeps its filter state between chunks, so
the output has no seams at chunk boundaries.
"""

from __future__ import annotations

import av
import numpy as np

from speechmesh.common.audio.pcm import Pcm


class PcmStreamResampler:
    def __init__(self, sample_rate: int, channels: int, target_rate: int) -> None:
        self._rate = sample_rate
        self._channels = channels
        self._layout = "mono" if channels == 1 else "stereo"
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=target_rate)
        self._carry = b""
        self._frame_bytes = 2 * channels

    def feed(self, data: bytes) -> np.ndarray:
        data = self._carry + data
        usable = len(data) - len(data) % self._frame_bytes
        self._carry = data[usable:]
        if not usable:
            return np.zeros(0, dtype=np.float32)
        samples = np.frombuffer(data[:usable], dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout=self._layout)
        frame.sample_rate = self._rate
        return _collect(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        return _collect(self._resampler.resample(None))


def resample(pcm: Pcm, sample_rate: int) -> Pcm:
    """Whole-buffer resampling (mono, float32) with FFmpeg's resampler."""
    if pcm.sample_rate == sample_rate:
        return pcm
    frame = av.AudioFrame.from_ndarray(pcm.mono().reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = pcm.sample_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    frames = resampler.resample(frame) + resampler.resample(None)
    return Pcm(_collect(frames), sample_rate)


def _collect(frames: list[av.AudioFrame]) -> np.ndarray:
    if not frames:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames]).astype(np.float32)
