"""What the client's methods answer: plain frozen dataclasses, the same over REST and gRPC.

Field names and units are the REST API's (seconds, not the services' milliseconds), so code
written against one transport reads the other's results unchanged. Where gRPC has no value
(a voice's `preview_url`, a model's price), the field is None.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Word:
    word: str
    start: float
    end: float
    probability: float
    speaker: str | None = None


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    # None unless the transcription was diarized: no speaker is claimed without it.
    speaker: str | None
    # ISO 639-1 language the segment was transcribed in (speakers may change language).
    language: str = ""


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    duration: float
    segments: list[Segment]
    # Only when word timestamps were asked for.
    words: list[Word] | None = None


@dataclass(frozen=True)
class LiveResult:
    """One result of live recognition: interim (`is_final` False, may still change) or final."""

    text: str
    is_final: bool
    start: float
    end: float
    language: str
    words: list[Word]


@dataclass(frozen=True)
class Model:
    id: str
    name: str
    type: str  # tts, stt, audio, voice_conversion, chat
    tier: str  # free, standard, premium
    languages: list[str]
    supports_cloning: bool
    supports_streaming: bool
    status: str  # ready, loading, unavailable
    unavailable_reason: str | None = None
    # The gateway's price (TTS models); None over gRPC, where nothing is billed.
    credits_per_1k_chars: int | None = None


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    model: str
    language: str
    gender: str  # male, female, neutral
    # A signed sample URL from the gateway; None over gRPC.
    preview_url: str | None = None
    # For a hosted-API voice id not installed here: the installed voice that speaks for it.
    alias_of: str | None = None


@dataclass(frozen=True)
class Analysis:
    """Key, tempo and meter of a piece of music (POST /v1/audio/analyze/)."""

    key: str
    scale: str
    bpm: float
    time_signature: str
    camelot: str
    compatible_keys: list[str]


@dataclass(frozen=True)
class Usage:
    """The rate-limit and credit headers of a REST response; None where it did not carry one
    (free routes carry no credit headers; 401 and 403 carry neither)."""

    rate_limit_limit: int | None
    rate_limit_remaining: int | None
    rate_limit_reset: int | None  # Unix time (s) when the oldest request of the window stops counting
    credits_used: int | None
    credits_remaining: int | None
