"""The Triton side of diarization's speaker embedder: a python-backend model with dynamic batching.

`deploy/triton/models/campplus/1/model.py` serves CAM++; the model's name picks the embedder
(a copy of that folder named `dvector` would serve the d-vector), built by this service's
registry from the same settings (SPEECHMESH_STT_* in Triton's environment) as in-process.

Each request carries its clips end to end in AUDIO (16 kHz float32) and their lengths in
LENGTHS; Triton's dynamic batcher hands the requests that arrived together to one `execute`,
and `execute` embeds all their clips in one `embed_many` (the d-vector's LSTM then runs the
windows of every caller's clips in large batches; CAM++ takes a clip a call either way).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from services.stt.registry import local_embedder
from services.stt.settings import SttSettings
from speechmesh.speakers import SAMPLE_RATE
from speechmesh.speakers.triton import EMBEDDINGS, LENGTHS
from speechmesh.triton import wire
from speechmesh.triton.hosting import HostedModel, in_process


class EmbedderModel(HostedModel):
    def setup(self, name: str, parameters: dict[str, str]) -> None:
        settings = in_process(SttSettings)
        self.embedder = local_embedder(settings, name, threads=int(parameters.get("threads", "0")))
        self.embedder.load()
        # One clip now: the d-vector's librosa kernels compile (or fail, e.g. on a read-only
        # cache folder) while the model loads, so a failure fails readiness, not the first request.
        self.embedder.embed(np.zeros(SAMPLE_RATE, np.float32))

    def execute(self, requests: list[Any]) -> list[Any] | None:
        """Every clip of every request in one `embed_many`, then each request its rows."""
        clips: list[list[np.ndarray]] = []
        for request in requests:
            inputs = self._inputs(request)
            ends = np.cumsum(inputs[LENGTHS])
            clips.append(np.split(inputs[wire.AUDIO], ends[:-1]) if len(ends) else [])
        try:
            rows = self.embedder.embed_many([clip for request_clips in clips for clip in request_clips])
        except Exception as error:
            return [self._failure(error)] * len(requests)
        responses, start = [], 0
        for request_clips in clips:
            responses.append(self._response({EMBEDDINGS: rows[start : start + len(request_clips)]}))
            start += len(request_clips)
        return responses
