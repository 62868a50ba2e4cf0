"""Pitch-preserving time stretch (FFmpeg's atempo filter), for speeds engines cannot render.

`time_stretch` changes a whole buffer; `StreamStretcher` changes audio that arrives in
blocks, keeping the filter's state between them so there are no seams.
"""

from __future__ import annotations

from fractions import Fraction

import av
import av.filter
import numpy as np

from speechmesh.common.audio.pcm import Pcm

# One atempo instance takes factors in this range; others are a chain of them.
_ATEMPO_RANGE = (0.5, 2.0)


class StreamStretcher:
    """Mono float32 blocks in, the same audio `factor` times faster out (2.0 = half the
    duration), same pitch and rate. `flush` returns what the filter still holds."""

    def __init__(self, sample_rate: int, factor: float) -> None:
        self._rate = sample_rate
        self._pts = 0
        self._graph = av.filter.Graph()
        source = self._graph.add_abuffer(
            format="flt", sample_rate=sample_rate, layout="mono", time_base=Fraction(1, sample_rate)
        )
        previous = source
        for step in _steps(factor):
            tempo = self._graph.add("atempo", f"{step:.6f}")
            previous.link_to(tempo)
            previous = tempo
        sink = self._graph.add("abuffersink")
        previous.link_to(sink)
        self._graph.configure()

    def feed(self, samples: np.ndarray) -> np.ndarray:
        if samples.size == 0:
            return np.zeros(0, dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.float32).reshape(1, -1), format="flt", layout="mono"
        )
        frame.sample_rate = self._rate
        frame.pts = self._pts
        self._pts += samples.size
        self._graph.push(frame)
        return self._pull()

    def flush(self) -> np.ndarray:
        self._graph.push(None)
        return self._pull()

    def _pull(self) -> np.ndarray:
        blocks: list[np.ndarray] = []
        while True:
            try:
                blocks.append(self._graph.pull().to_ndarray().reshape(-1))
            except (av.error.EOFError, av.error.BlockingIOError):
                break
        return np.concatenate(blocks).astype(np.float32) if blocks else np.zeros(0, dtype=np.float32)


def time_stretch(pcm: Pcm, factor: float) -> Pcm:
    """`pcm` played `factor` times faster (2.0 = half the duration), same pitch and rate."""
    if factor == 1.0 or pcm.frames == 0:
        return pcm
    stretcher = StreamStretcher(pcm.sample_rate, factor)
    samples = np.concatenate([stretcher.feed(pcm.mono()), stretcher.flush()])
    return Pcm(samples, pcm.sample_rate)


def _steps(factor: float) -> list[float]:
    """`factor` as a product of factors each within one atempo's range."""
    low, high = _ATEMPO_RANGE
    steps = []
    while factor < low or factor > high:
        step = low if factor < low else high
        steps.append(step)
        factor /= step
    return [*steps, factor]
