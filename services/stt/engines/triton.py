"""A Recognizer whose model runs in a Triton Inference Server (runtime = triton).

One Triton request per call: the audio (16 kHz float32) and the options go over, the
Transcript comes back as JSON (services/stt/triton_model.py is the other side). Word times,
segments and decoder statistics are the engine's own, so diarization and every response
format work on them as on an in-process transcript. A caller who leaves cancels the request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from services.stt.recognizer import RecognitionOptions, Segment, Transcript, Word
from speechmesh.common.settings import TritonSettings
from speechmesh.triton import wire
from speechmesh.triton.remote import TritonModel


class TritonRecognizer:
    def __init__(self, model: str, settings: TritonSettings) -> None:
        # Batched: the Triton model has dynamic batching (deploy/triton/models/whisper).
        self._remote = TritonModel(model, settings.address(model), settings.ready_timeout_seconds, batched=True)
        self._languages: tuple[str, ...] = ()

    def load(self) -> None:
        self._remote.wait_ready()
        reply = self._call({"method": "languages"}, np.zeros(0, np.float32))
        self._languages = tuple(reply["languages"])

    def warm_up(self) -> None:
        """Nothing: Triton warmed the engine when it loaded the model."""

    def languages(self) -> Sequence[str]:
        return self._languages

    def recognize(self, audio: np.ndarray, options: RecognitionOptions) -> Transcript:
        reply = self._call({"method": "recognize", "options": dataclasses.asdict(options)}, audio)
        return transcript_from(reply)

    def _call(self, request: dict[str, Any], audio: np.ndarray) -> Any:
        inputs = {wire.REQUEST: wire.pack(request), wire.AUDIO: np.asarray(audio, np.float32)}
        (outputs,) = self._remote.stream(inputs)  # a decoupled model (hosting.py says why): one response
        return wire.unpack(outputs[wire.REPLY])


def transcript_from(reply: dict[str, Any]) -> Transcript:
    """The Transcript whose `dataclasses.asdict` is `reply`."""
    segments = tuple(
        Segment(
            **{
                **segment,
                "words": tuple(Word(**word) for word in segment["words"]),
                "tokens": tuple(segment["tokens"]),
            }
        )
        for segment in reply["segments"]
    )
    return Transcript(**{**reply, "segments": segments})
