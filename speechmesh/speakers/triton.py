"""A SpeakerEmbedder whose model runs in a Triton Inference Server (runtime = triton).

A call's clips travel in one request (services/stt/triton_embedder.py is the other side);
Triton batches the requests of concurrent callers into one model call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from speechmesh.common.settings import TritonSettings
from speechmesh.speakers import SAMPLE_RATE
from speechmesh.triton import wire
from speechmesh.triton.remote import TritonModel

# Tensors besides wire's: each clip's length in samples, and one embedding row per clip.
LENGTHS = "LENGTHS"
EMBEDDINGS = "EMBEDDINGS"


class TritonEmbedder:
    def __init__(self, settings: TritonSettings, model: str) -> None:
        self._remote = TritonModel(model, settings.address(model), settings.ready_timeout_seconds, batched=True)
        self._dim = 0

    def load(self) -> None:
        """Waits for the model, then learns its embedding size from one clip of silence."""
        self._remote.wait_ready()
        self._dim = self.embed(np.zeros(SAMPLE_RATE, np.float32)).shape[0]

    def embed(self, audio: np.ndarray) -> np.ndarray:
        return self.embed_many([audio])[0, :]

    def embed_many(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        flat = [np.asarray(clip, np.float32).reshape(-1) for clip in clips]
        if not flat:  # Triton cannot send an empty batch of rows back
            return np.zeros((0, self._dim), np.float32)
        audio = np.concatenate(flat)
        lengths = np.array([len(clip) for clip in flat], np.int64)
        outputs = self._remote.call({wire.AUDIO: audio, LENGTHS: lengths})
        return np.asarray(outputs[EMBEDDINGS], np.float32).reshape(len(flat), -1)
