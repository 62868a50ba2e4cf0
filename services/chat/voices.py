"""The voice a reply or a translation is spoken with: the caller's, or a default that
speaks the language.

The page's voice-chat default `af_bella` is a Kokoro v1.0 pack that no registry ships: the
TTS service answers it as an alias of an installed voice. The chat service's default is a
real voice, `jf_nezumi` (Kokoro's Japanese pack, which reads English perfectly and French,
Italian and Spanish best of the installed Kokoro voices: tests/test_tts_engines.py). For a
language the default voice does not speak, the first voice the TTS service lists for it is
taken, preferring models in `preference` order and real voices over aliases.
"""

from __future__ import annotations

from collections import OrderedDict

from services.chat.upstream import Upstream
from speechmesh.v1 import tts_pb2

_KEPT = 64


class VoiceChooser:
    def __init__(self, upstream: Upstream, default_voice: str, default_model: str, preference: list[str]) -> None:
        self._upstream = upstream
        self._default_voice = default_voice
        self._default_model = default_model
        self._preference = preference
        # (model, language) -> (voice, model), the most recently used first out; bounded, as
        # callers name the model.
        self._by_language: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()

    async def choose(self, voice: str, model: str, language: str) -> tuple[str, str]:
        """(voice, model) for speech in `language`; the TTS service refuses an unknown voice."""
        if voice:
            return voice, model
        key = (model or self._default_model, language)
        if key not in self._by_language:
            self._by_language[key] = await self._find(key[0], language)
            while len(self._by_language) > _KEPT:
                self._by_language.popitem(last=False)
        self._by_language.move_to_end(key)
        return self._by_language[key]

    async def _find(self, model: str, language: str) -> tuple[str, str]:
        listed = await self._upstream.voices(language=language)
        speaks = {(v.id, v.model) for v in listed}
        if model == self._default_model and (self._default_voice, model) in speaks:
            return self._default_voice, model

        def rank(voice: tts_pb2.Voice) -> tuple[bool, int, bool]:
            order = self._preference.index(voice.model) if voice.model in self._preference else len(self._preference)
            return (voice.model != model, order, bool(voice.alias_of))

        candidates = sorted(listed, key=rank)
        if not candidates:
            # No voice lists the language: the default speaks it as best it can.
            return self._default_voice, self._default_model
        best = candidates[0]
        return best.alias_of or best.id, best.model
