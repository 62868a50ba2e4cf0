"""A Separator whose model runs in a Triton Inference Server (runtime = triton).

The pipeline hands it a segment at a time, as to an in-process separator; the segment goes
over as one float32 (frames, channels) tensor and the stems come back one response each,
in the engine's order (services/audio/triton_model.py is the other side). The rate and the
stem counts come from the model at load; a model Triton serves but cannot run (demucs
without its weights) answers why, and stays unavailable here with that reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from speechmesh.common.errors import UpstreamUnavailable
from speechmesh.common.settings import TritonSettings
from speechmesh.triton import wire
from speechmesh.triton.remote import Outputs, TritonModel


class TritonSeparator:
    def __init__(self, model: str, settings: TritonSettings) -> None:
        self._remote = TritonModel(model, settings.address(model), settings.ready_timeout_seconds)
        self.sample_rate = 0
        self.stem_counts: tuple[int, ...] = ()

    def load(self) -> None:
        self._remote.wait_ready()
        (reply,) = [wire.unpack(piece[wire.REPLY]) for piece in self._stream({"method": "describe"})]
        self.sample_rate = int(reply["sample_rate"])
        self.stem_counts = tuple(int(count) for count in reply["stem_counts"])

    def warm_up(self) -> None:
        """Nothing: Triton warmed the engine when it loaded the model."""

    def separate(self, audio: np.ndarray, stems: int) -> dict[str, np.ndarray]:
        samples = np.asarray(audio, np.float32)
        out = {}
        for piece in self._stream({"method": "separate", "stems": stems}, samples.reshape(len(samples), -1)):
            out[str(wire.unpack(piece[wire.REPLY])["stem"])] = piece[wire.AUDIO].reshape(samples.shape)
        if len(out) != stems:
            raise UpstreamUnavailable(f"Model '{self._remote.name}' on Triton sent {len(out)} stems, not {stems}.")
        return out

    def _stream(self, request: dict[str, Any], audio: np.ndarray | None = None) -> list[Outputs]:
        # Every input the model declares is sent: describe carries an empty segment.
        samples = np.zeros((0, 1), np.float32) if audio is None else audio
        return list(self._remote.stream({wire.REQUEST: wire.pack(request), wire.AUDIO: samples}))
