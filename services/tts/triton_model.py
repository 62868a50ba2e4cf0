"""The Triton side of a TTS model: a decoupled python-backend model around a Synthesizer.

`deploy/triton/models/<model>/1/model.py` names the model; the engine is built by this
service's registry from the same settings (SPEECHMESH_TTS_* in Triton's environment) as
in-process, so the speech is the same. Requests (wire.REQUEST JSON):
`{"method": "voices"}` -> one reply with the voice cards; `{"method": "synthesize", "text",
"voice", "language", "speed"}` -> one response per block of speech (AUDIO float32, REPLY
`{"sample_rate"}`), stopping between blocks when the caller cancels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from services.tts.registry import build_registry
from services.tts.settings import TtsSettings
from services.tts.synthesizer import SynthesisOptions, Synthesizer
from speechmesh.common.errors import InvalidArgument
from speechmesh.triton import wire
from speechmesh.triton.hosting import HostedModel, Tensors, in_process


class SynthesizerModel(HostedModel):
    def setup(self, name: str, parameters: dict[str, str]) -> None:
        settings = in_process(TtsSettings, engines=[name], default_model=name)
        registry = build_registry(settings)
        registry.load()
        self.engine: Synthesizer = registry.get(name)[1]

    def pieces(self, inputs: Tensors) -> Iterator[Tensors]:
        request = wire.unpack(inputs[wire.REQUEST])
        method = request.get("method")
        if method == "voices":
            cards = [dataclasses.asdict(card) for card in self.engine.voices()]
            yield {wire.REPLY: wire.pack({"voices": cards}), wire.AUDIO: np.zeros(0, np.float32)}
            return
        if method != "synthesize":
            raise InvalidArgument(f"Unknown method {method!r}.")
        options = SynthesisOptions(voice=request["voice"], language=request["language"], speed=float(request["speed"]))
        for pcm in self.engine.synthesize(str(request["text"]), options):
            yield {wire.REPLY: wire.pack({"sample_rate": pcm.sample_rate}), wire.AUDIO: pcm.mono()}
