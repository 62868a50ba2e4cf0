"""The d-vector speaker embedder, loaded and warmed like any engine, for `preserve_voice`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from speechmesh.speakers.dvector import DVectorEmbedder


class DVectorMeter:
    def __init__(self, threads: int) -> None:
        self._embedder = DVectorEmbedder(threads=threads)

    def load(self) -> None:
        self._embedder.load()

    def warm_up(self) -> None:
        self._embedder.embed(np.zeros(16_000, np.float32))

    def embed(self, audio: np.ndarray) -> np.ndarray:
        return self._embedder.embed(audio)

    def embed_many(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        return self._embedder.embed_many(clips)
