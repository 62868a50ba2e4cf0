"""The Triton side of an STT model: a python-backend model around a Recognizer.

`deploy/triton/models/<model>/1/model.py` names the model; the engine is built by this
service's registry from the same settings (SPEECHMESH_STT_* in Triton's environment) as
in-process. Requests (wire.REQUEST JSON, AUDIO float32 16 kHz mono):
`{"method": "languages"}` -> `{"languages": [...]}`; `{"method": "recognize", "options":
RecognitionOptions}` + AUDIO -> the Transcript as JSON. With dynamic batching Triton hands
the requests that arrived together to one `execute`; they run at once, so Whisper's
DecodeBatcher decodes their chunks in shared batches, as it does for concurrent calls
in-process.
"""

from __future__ import annotations

import dataclasses

from services.stt.recognizer import RecognitionOptions, Recognizer
from services.stt.registry import build_registry
from services.stt.settings import SttSettings
from speechmesh.common.errors import InvalidArgument
from speechmesh.triton import wire
from speechmesh.triton.hosting import HostedModel, Tensors, in_process


class RecognizerModel(HostedModel):
    def setup(self, name: str, parameters: dict[str, str]) -> None:
        settings = in_process(SttSettings, engines=[name], default_model=name)
        registry = build_registry(settings)
        registry.load()
        self.engine: Recognizer = registry.get(name)[1]

    def answer(self, inputs: Tensors) -> Tensors:
        request = wire.unpack(inputs[wire.REQUEST])
        method = request.get("method")
        if method == "languages":
            return {wire.REPLY: wire.pack({"languages": list(self.engine.languages())})}
        if method != "recognize":
            raise InvalidArgument(f"Unknown method {method!r}.")
        transcript = self.engine.recognize(inputs[wire.AUDIO], RecognitionOptions(**request["options"]))
        return {wire.REPLY: wire.pack(dataclasses.asdict(transcript))}
