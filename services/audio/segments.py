"""Long audio through whole-array engines: overlapping segments joined by crossfades.

Engines work on arrays in memory, and a 100 MB upload can hold hours of audio: the
pipeline hands them segments of a bounded length instead, each overlapping the previous
one, and joins the outputs with an equal-gain linear crossfade over the overlap, so a
segment boundary leaves no click and memory stays at a few segments whatever the length.
Stateful models (a denoiser's recurrent state, WPE's statistics) restart at each
segment; the overlap gives them time to settle before their output is heard alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from speechmesh.common.cancel import checkpoint

# One engine call: a segment in, one array per output (a separator's stems) out, each the
# segment's length.
Process = Callable[[np.ndarray], dict[str, np.ndarray]]


def segmented(
    blocks: Iterable[np.ndarray], process: Process, segment_frames: int, overlap_frames: int
) -> Iterator[dict[str, np.ndarray]]:
    """The outputs of `process` over the audio in `blocks` (frames along axis 0), in
    order and joined: the concatenation of what is yielded, per output name, is as long
    as the input. Segments hold at most `segment_frames` frames."""
    if not 0 < overlap_frames < segment_frames:
        raise ValueError("the overlap must be shorter than a segment")
    hop = segment_frames - overlap_frames
    pending: list[np.ndarray] = []
    held = 0
    tail: dict[str, np.ndarray] | None = None  # the previous segment's output over the overlap
    for block in blocks:
        pending.append(block)
        held += len(block)
        # Strictly more than a segment: the last segment is cut from what remains at the end.
        while held > segment_frames:
            buffer = np.concatenate(pending)
            out = _joined(process(buffer[:segment_frames]), tail, overlap_frames)
            checkpoint()
            tail = {name: audio[hop:] for name, audio in out.items()}
            yield {name: audio[:hop] for name, audio in out.items()}
            pending, held = [buffer[hop:]], len(buffer) - hop
    if held:
        yield _joined(process(np.concatenate(pending)), tail, overlap_frames)


def _joined(out: dict[str, np.ndarray], tail: dict[str, np.ndarray] | None, overlap: int) -> dict[str, np.ndarray]:
    if tail is None:
        return out
    joined = {}
    for name, audio in out.items():
        audio = np.array(audio, dtype=np.float32)
        previous = tail[name]
        n = min(len(previous), len(audio), overlap)
        ramp = np.linspace(0.0, 1.0, n + 2, dtype=np.float32)[1:-1]
        if audio.ndim == 2:
            ramp = ramp[:, None]
        audio[:n] = previous[:n] * (1 - ramp) + audio[:n] * ramp
        joined[name] = audio
    return joined
