"""A Synthesizer whose model runs in a Triton Inference Server (runtime = triton).

The service treats it like any engine: voices come from the model at load, speech streams
back a block at a time as Triton's decoupled model sends it (services/tts/triton_model.py
is the other side), and closing the stream early cancels the request in Triton.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from services.tts.synthesizer import SynthesisOptions, VoiceCard
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.settings import TritonSettings
from speechmesh.triton import wire
from speechmesh.triton.remote import TritonModel


class TritonSynthesizer:
    def __init__(self, model: str, settings: TritonSettings) -> None:
        self._remote = TritonModel(model, settings.address(model), settings.ready_timeout_seconds)
        self._voices: tuple[VoiceCard, ...] = ()

    def load(self) -> None:
        self._remote.wait_ready()
        (reply,) = [wire.unpack(piece[wire.REPLY]) for piece in self._remote.stream(_request(method="voices"))]
        self._voices = tuple(VoiceCard(**{**card, "languages": tuple(card["languages"])}) for card in reply["voices"])

    def warm_up(self) -> None:
        """Nothing: Triton warmed the engine when it loaded the model."""

    def voices(self) -> Sequence[VoiceCard]:
        return self._voices

    def synthesize(self, text: str, options: SynthesisOptions) -> Iterator[Pcm]:
        request = _request(
            method="synthesize", text=text, voice=options.voice, language=options.language, speed=options.speed
        )
        for piece in self._remote.stream(request):
            yield Pcm(piece[wire.AUDIO], int(wire.unpack(piece[wire.REPLY])["sample_rate"]))


def _request(**fields: object) -> dict[str, np.ndarray]:
    return {wire.REQUEST: wire.pack(fields)}
