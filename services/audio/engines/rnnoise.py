"""RNNoise denoiser: a small recurrent network (Xiph's RNNoise) on 48 kHz speech, very light.

`pyrnnoise` ships `librnnoise`; this module calls its C function directly through the
handle the package opens (the package's own frame helper rounds the audio to int16 and
asserts on samples beyond full scale). RNNoise reads 480-sample (10 ms) frames at int16
scale and answers 960 samples late (measured by cross-correlation on speech), so the input
gets that many zeros appended and the output is read from that far in: the result is
aligned with the input and exactly as long.

RNNoise has no attenuation limit of its own, so strength mixes the input back in at the
limit's level, `out = (1 - g) * denoised + g * input` with `g = 10 ** (-limit / 20)`: where
RNNoise removes all of the noise, what is left is the noise `limit` dB down (the same rule
libDF applies per frequency bin; `ATTENUATION_LIMIT_DB` is the DeepFilterNet engine's).

Concurrency: every call makes its own RNNoise state (about 0.2 ms) and destroys it after,
so concurrent calls share nothing and need no lock, and a request's output depends on that
request alone.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from services.audio.engines.deepfilter import ATTENUATION_LIMIT_DB

SAMPLE_RATE = 48_000
FRAME = 480
# RNNoise's output delay in samples at 48 kHz (two frames), measured.
DELAY = 960
# RNNoise works on int16-scaled floats.
_INT16_SCALE = 32768.0
_FLOATS = ctypes.POINTER(ctypes.c_float)


class RnnoiseDenoiser:
    sample_rate = SAMPLE_RATE

    def __init__(self) -> None:
        self._library: Any = None

    def load(self) -> None:
        from pyrnnoise import rnnoise

        if rnnoise.FRAME_SIZE != FRAME:
            raise OSError(f"RNNoise's frame is {rnnoise.FRAME_SIZE} samples, {FRAME} expected")
        self._library = rnnoise.lib

    def warm_up(self) -> None:
        noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE // 2).astype(np.float32)
        self.denoise(noise * 0.01, 3)

    def denoise(self, audio: np.ndarray, strength: int) -> np.ndarray:
        audio = np.asarray(audio, np.float32)
        if audio.size == 0:
            return audio.copy()
        if self._library is None:
            raise RuntimeError("RnnoiseDenoiser.load() was not called")
        state = self._library.rnnoise_create(None)
        if not state:
            raise MemoryError("RNNoise could not create its state")
        try:
            denoised = _run(self._library, state, audio)
        finally:
            self._library.rnnoise_destroy(state)
        residual = np.float32(10 ** (-ATTENUATION_LIMIT_DB[strength] / 20))
        return (1 - residual) * denoised + residual * audio


def _run(library: Any, state: int, audio: np.ndarray) -> np.ndarray:
    """The audio through RNNoise frame by frame, its delay taken out."""
    tail = DELAY + (-(audio.size + DELAY)) % FRAME
    padded = np.concatenate([audio * np.float32(_INT16_SCALE), np.zeros(tail, np.float32)])
    output = np.empty_like(padded)
    for offset in range(0, padded.size, FRAME):
        frame_in = padded[offset : offset + FRAME]
        frame_out = output[offset : offset + FRAME]
        library.rnnoise_process_frame(state, frame_out.ctypes.data_as(_FLOATS), frame_in.ctypes.data_as(_FLOATS))
    return output[DELAY : DELAY + audio.size] / np.float32(_INT16_SCALE)
