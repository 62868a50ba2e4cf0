"""Everything the TTS service loads: synthesizers first, then the cloners built on them."""

from __future__ import annotations

from collections.abc import Mapping

from services.tts.cloner import VoiceCloner
from services.tts.synthesizer import Synthesizer
from speechmesh.common.errors import InvalidArgument
from speechmesh.common.models import ModelCard
from speechmesh.common.registry import EngineRegistry
from speechmesh.common.sentences import FIRST_PIECE_CHARS


class TtsEngines:
    def __init__(
        self,
        synthesizers: EngineRegistry[Synthesizer],
        cloners: EngineRegistry[VoiceCloner],
        first_piece_chars: Mapping[str, int] | None = None,
    ) -> None:
        self.synthesizers = synthesizers
        self.cloners = cloners
        self._first_piece_chars = dict(first_piece_chars or {})

    def first_piece(self, model: str) -> int:
        """How many characters a stream's first piece of text may have with `model`."""
        return self._first_piece_chars.get(model, FIRST_PIECE_CHARS)

    def load(self) -> None:
        self.synthesizers.load()
        self.cloners.load()

    def models(self) -> list[ModelCard]:
        return self.synthesizers.models() + self.cloners.models()

    def cloner(self, model: str) -> tuple[str, VoiceCloner]:
        """The cloner for `model` ("" = default); documented cloning models that are not
        installed raise their unavailable error; a synthesizer that cannot clone, 400."""
        known = {card.id for card in self.cloners.models()}
        if not model or model in known:
            return self.cloners.get(model)
        self.synthesizers.get(model)  # NotFound / ModelUnavailable / ModelLoading
        raise InvalidArgument(
            f"Model '{model}' does not clone voices; use '{self.cloners.default_model}'.", param="model", model=model
        )
