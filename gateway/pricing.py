"""What each documented endpoint costs in credits (seed page: 'Kreditkosten'), in one table.

Credits are whole numbers: every started unit counts (34 characters of Kokoro cost 2 credits,
as the page's example response says; 61 s of STT cost 2 minutes, 4 credits). Text is priced
per 1,000 characters, TTS by the tier of the model that speaks — the tier its service's model
card states (gateway/tiers.py; piper, espeak, festival free, kokoro standard, xtts premium) —
and audio per minute of decoded audio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CHARACTERS = "characters"
# A batch's texts together: each is held to the plan's text limit, not their sum.
BATCH_CHARACTERS = "batch_characters"
AUDIO_SECONDS = "audio_seconds"
TURNS = "turns"

# The page's TTS rates per 1,000 characters, by tier.
TIER_CREDITS = {"free": 1, "standard": 2, "premium": 4}
# A request whose model is not known yet is held at this rate and charged at its model's.
HIGHEST_TIER_CREDITS = max(TIER_CREDITS.values())


@dataclass(frozen=True)
class Price:
    unit: str
    credits: int  # per `per` units
    per: float
    by_tier: bool = False  # credits come from the model's tier (TTS)
    # Rates of a price that depends on what is asked (stem separation: by stem count), by
    # the grade the route names; other grades cost `credits`.
    grades: tuple[tuple[str, int], ...] = ()

    def rate(self, tier: str | None) -> int:
        """Credits per `per` units at `tier` (the model's tier, or the request's grade)."""
        if self.by_tier:
            return TIER_CREDITS.get(tier or "", HIGHEST_TIER_CREDITS)
        return dict(self.grades).get(tier or "", self.credits)

    def of(self, amount: float, tier: str | None) -> int:
        """Credits for `amount` units; `tier` None: not known (yet)."""
        rate = self.rate(tier)
        if rate == 0 or amount <= 0:
            return 0
        return rate * math.ceil(amount / self.per)

    def most(self, credits: int, tier: str | None) -> float:
        """The most units `credits` pay for (whole units: every started one is charged)."""
        return (credits // self.rate(tier)) * self.per


_TTS = Price(CHARACTERS, 0, 1000, by_tier=True)
_TTS_BATCH = Price(BATCH_CHARACTERS, 0, 1000, by_tier=True)
_STT = Price(AUDIO_SECONDS, 2, 60)
_VOICE_CHANGER = Price(AUDIO_SECONDS, 3, 60)
_ENHANCEMENT = Price(AUDIO_SECONDS, 2, 60)

# Documented path -> price. Paths not listed (models, voices, tasks, results, analyze,
# convert) are free.
PRICES: dict[str, Price] = {
    "/v1/tts/": _TTS,
    "/v1/tts/batch/": _TTS_BATCH,
    "/v1/audio/speech": _TTS,
    "/v1/tts/clone/": Price(CHARACTERS, 4, 1000),
    "/v1/stt/": _STT,
    # OpenAI's transcriptions and translations are both Whisper on the audio: speech to text.
    "/v1/audio/transcriptions": _STT,
    "/v1/audio/translations": _STT,
    "/v1/voice-convert/": _VOICE_CHANGER,
    # Not on the page's table: restyling speech is voice changing, priced as it.
    "/v1/speech-to-speech/": _VOICE_CHANGER,
    # Dereverberation is enhancement of another kind.
    "/v1/audio/enhance/": _ENHANCEMENT,
    "/v1/audio/dereverb/": _ENHANCEMENT,
    # "3-4 per minute": vocal removal (2 stems) 3, stem splitting (4-6 stems) 4; the grade
    # is the stem count.
    "/v1/audio/separate/": Price(AUDIO_SECONDS, 4, 60, grades=(("2", 3),)),
    "/v1/speech-translate/": Price(AUDIO_SECONDS, 5, 60),
    "/v1/voice-chat/": Price(TURNS, 3, 1),
}


def price_of(route: str, unit: str) -> Price | None:
    price = PRICES.get(route)
    return price if price is not None and price.unit == unit else None
