"""Text translation over every loaded translator: which pairs there are, and one call that
translates with the engine holding the pair.

Only direct pairs: a chain through a third language doubles a rule-based translator's
errors. Speech toward English has a second way, Whisper's translate task on the speech
itself (`speech_translate.py`), which reaches every language Whisper hears.
"""

from __future__ import annotations

from services.chat.processors import Translator
from speechmesh.common.errors import InvalidArgument
from speechmesh.common.registry import EngineRegistry


class Translators:
    def __init__(self, registry: EngineRegistry[Translator]) -> None:
        self._registry = registry

    def _engines(self) -> dict[str, Translator]:
        return self._registry.engines()

    def pairs(self) -> frozenset[tuple[str, str]]:
        return frozenset(pair for engine in self._engines().values() for pair in engine.pairs())

    def both_ways(self, a: str, b: str) -> bool:
        pairs = self.pairs()
        return (a, b) in pairs and (b, a) in pairs

    def holder(self, source: str, target: str) -> str:
        """The id of the translator with the pair, or ''."""
        return next((name for name, engine in self._engines().items() if (source, target) in engine.pairs()), "")

    def translate(self, text: str, source: str, target: str) -> str:
        if source == target:
            return text
        for engine in self._engines().values():
            if (source, target) in engine.pairs():
                return engine.translate(text, source, target)
        raise InvalidArgument(f"No translator here translates {source} to {target}.", param="target_language")
