"""`world-convert`: voice conversion by WORLD adaptation toward a measured voice, named for what it is.

The documented models (openvoice, knn-vc) cannot be had offline, and this is not a neural
converter. The source speaker and the target voice are each profiled once (d-vector, F0
statistics, average envelope, formants; `speechmesh/speakers/world.py`), and every segment of
the recording is resynthesized by WORLD with the target's pitch level and range, the
source's formants scaled to the target's vocal-tract length, and the remaining average
spectral difference filtered away. Timing, articulation and the words stay the source
speaker's: the result sounds like a relative of the target, and the similarity to the
target before and after is measured so the caller can see how close it came.

Thread safety: two threads may convert at once. WORLD (pyworld) keeps no state and releases
the GIL, and the d-vector embedder's only state after `load` is its onnxruntime session,
whose `run` may be called concurrently; each call then uses `threads` cores of its own.
"""

from __future__ import annotations

import numpy as np

from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.audio.resample import resample
from speechmesh.speakers import SAMPLE_RATE as EMBEDDER_RATE
from speechmesh.speakers import world
from speechmesh.speakers.dvector import DVectorEmbedder
from speechmesh.speakers.world import VoiceProfile

MODEL_ID = "world-convert"


class WorldConverter:
    def __init__(self, threads: int = 0) -> None:
        """`threads`: the d-vector embedder's onnxruntime threads (0 = one per core)."""
        self._embedder = DVectorEmbedder(threads=threads)

    def load(self) -> None:
        import pyworld  # noqa: F401 - fail at load, not at the first conversion, when WORLD is missing

        self._embedder.load()

    def warm_up(self) -> None:
        # onnxruntime sizes its buffers on the first run; WORLD has nothing to warm.
        self._embedder.embed(np.zeros(EMBEDDER_RATE, np.float32))

    def profile(self, speech: Pcm) -> VoiceProfile:
        """Raises InvalidAudio when `speech` holds under 2 s of voiced sound to measure."""
        return world.profile(speech, self._embedder)

    def convert(self, speech: Pcm, source: VoiceProfile, target: VoiceProfile) -> Pcm:
        # Pitch is mapped from the source profile, not from each segment's own F0: segments
        # of one recording then share one mapping and keep their differences in pitch.
        return world.adapt(speech, source, target, pitch_from_source=True)

    def similarity(self, speech: Pcm, target: VoiceProfile) -> float:
        embedding = self._embedder.embed(resample(Pcm(speech.mono(), speech.sample_rate), EMBEDDER_RATE).samples)
        return world.similarity(embedding, target.embedding)
