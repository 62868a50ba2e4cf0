"""Everything the chat service loads: its language models and its translators."""

from __future__ import annotations

from dataclasses import dataclass

from services.chat.processors import LanguageModel, Translator, VoiceMeter
from speechmesh.common.models import ModelCard
from speechmesh.common.registry import EngineRegistry


@dataclass
class ChatEngines:
    language_models: EngineRegistry[LanguageModel]
    translators: EngineRegistry[Translator]
    voice_meters: EngineRegistry[VoiceMeter]

    def load(self) -> None:
        self.language_models.load()
        self.translators.load()
        self.voice_meters.load()

    def models(self) -> list[ModelCard]:
        return [*self.language_models.models(), *self.translators.models(), *self.voice_meters.models()]
