"""Pitch-preserving time stretch (FFmpeg's atempo filter), for speeds engines cannot render."""

from __future__ import annotations

from fractions import Fraction

import av
import av.filter
import numpy as np

from speechmesh.common.audio.pcm import Pcm


def time_stretch(pcm: Pcm, factor: float) -> Pcm:
    """`pcm` played `factor` times faster (2.0 = half the duration), same pitch and rate."""
    if factor == 1.0 or pcm.frames == 0:
        return pcm
    graph = av.filter.Graph()
    source = graph.add_abuffer(
        format="flt", sample_rate=pcm.sample_rate, layout="mono", time_base=Fraction(1, pcm.sample_rate)
    )
    tempo = graph.add("atempo", f"{factor:.6f}")
    sink = graph.add("abuffersink")
    source.link_to(tempo)
    tempo.link_to(sink)
    graph.configure()
    frame = av.AudioFrame.from_ndarray(pcm.mono().reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = pcm.sample_rate
    frame.pts = 0
    graph.push(frame)
    graph.push(None)
    blocks: list[np.ndarray] = []
    while True:
        try:
            blocks.append(graph.pull().to_ndarray().reshape(-1))
        except (av.error.EOFError, av.error.BlockingIOError):
            break
    samples = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return Pcm(samples.astype(np.float32), pcm.sample_rate)
