"""Everything the audio service loads: one registry per processor kind.

The runtime loads them in the background while health reports NOT_SERVING. A model whose
package or weights are missing is listed unavailable with the reason; the others serve.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.audio.processors import Analyzer, Denoiser, Dereverberator, Restyler, Separator, VoiceConverter
from speechmesh.common.models import ModelCard
from speechmesh.common.registry import EngineRegistry


@dataclass
class AudioEngines:
    denoisers: EngineRegistry[Denoiser]
    dereverberators: EngineRegistry[Dereverberator]
    separators: EngineRegistry[Separator]
    analyzers: EngineRegistry[Analyzer]
    converters: EngineRegistry[VoiceConverter]
    restylers: EngineRegistry[Restyler]

    def _registries(self) -> tuple[EngineRegistry, ...]:
        return (
            self.denoisers,
            self.dereverberators,
            self.separators,
            self.analyzers,
            self.converters,
            self.restylers,
        )

    def load(self) -> None:
        for registry in self._registries():
            registry.load()

    def models(self) -> list[ModelCard]:
        return [card for registry in self._registries() for card in registry.models()]
