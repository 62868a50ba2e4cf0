"""The Triton side of a music separator: a decoupled python-backend model around a Separator.

`deploy/triton/models/<model>/1/model.py` names the model; the engine is built by this
service's registry from the same settings (SPEECHMESH_AUDIO_* in Triton's environment) as
in-process, so the stems are the same. Requests (wire.REQUEST JSON):
`{"method": "describe"}` -> one reply `{"sample_rate", "stem_counts"}`;
`{"method": "separate", "stems": n}` + AUDIO float32 (frames, channels) at that rate -> one
response per stem, in the engine's order: REPLY `{"stem": name}` and AUDIO (frames, channels).
A response per stem rather than one (stems, frames, channels) tensor: each gRPC message holds
one stem (a 120 s segment of six stereo stems would be 254 MB in one), and nothing is stacked.

A separator that cannot load here (demucs without its weights) does not fail Triton's load,
which would stop a tritonserver that loads the whole repository: the model loads, and every
request answers ModelUnavailable with the reason the in-process registry gives, so the
service lists the model unavailable with that reason on either runtime.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from services.audio.processors import Separator
from services.audio.registry import build_engines
from services.audio.settings import AudioSettings
from speechmesh.common.errors import InvalidArgument, ModelUnavailable
from speechmesh.triton import wire
from speechmesh.triton.hosting import HostedModel, Tensors, in_process


class SeparatorModel(HostedModel):
    def setup(self, name: str, parameters: dict[str, str]) -> None:
        settings = in_process(AudioSettings, engines=[name], default_separator=name)
        separators = build_engines(settings).separators
        separators.load()
        (card,) = [card for card in separators.models() if card.id == name]
        self.engine: Separator | None = separators.engines().get(name)
        self.unavailable = card.unavailable_reason

    def pieces(self, inputs: Tensors) -> Iterator[Tensors]:
        if self.engine is None:
            raise ModelUnavailable(self.unavailable)
        request = wire.unpack(inputs[wire.REQUEST])
        method = request.get("method")
        if method == "describe":
            stem_counts = list(self.engine.stem_counts)
            yield {wire.REPLY: wire.pack({"sample_rate": self.engine.sample_rate, "stem_counts": stem_counts})}
            return
        if method != "separate":
            raise InvalidArgument(f"Unknown method {method!r}.")
        stems = int(request["stems"])
        if stems not in self.engine.stem_counts:
            raise InvalidArgument(f"This model separates into {self.engine.stem_counts} stems, not {stems}.")
        for name, stem in self.engine.separate(inputs[wire.AUDIO], stems).items():
            yield {wire.REPLY: wire.pack({"stem": name}), wire.AUDIO: np.asarray(stem, np.float32)}
