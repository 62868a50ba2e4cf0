"""Request and response bodies of the /v1/ JSON API, as the seed page documents them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from speechmesh.common import limits

Gender = Literal["male", "female", "neutral"]


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must contain something to say; it is empty or only whitespace")
    return text


# Text to speak: the seed's `text` and OpenAI's `input` refuse the same blank strings.
SpeechText = Annotated[str, AfterValidator(_not_blank)]


class TtsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(None, description="Model id (see /v1/models/); default: the server's default.")
    text: SpeechText = Field(description="Text to speak; at most the plan's limit (Pro 5,000, Enterprise 50,000).")
    voice: str | None = Field(
        None, description="Voice id (see /v1/voices/); default: the model's voice for the language."
    )
    format: Literal["mp3", "wav", "flac", "ogg"] = Field("mp3", description="Output format.")
    speed: float = Field(limits.SPEED_DEFAULT, ge=limits.SPEED_MIN, le=limits.SPEED_MAX, description="Speaking rate.")
    language: str | None = Field(None, description="ISO 639-1 code; default: the voice's language.")
    stream: bool = Field(False, description="Send audio while it is being synthesized.")
    timestamps: bool = Field(
        False, description="Answer JSON: the audio as base64 plus every word's start and end (not with stream)."
    )


class TimedWordOut(BaseModel):
    word: str
    start: float
    end: float


class TtsTimestampsOut(BaseModel):
    audio_base64: str
    content_type: str
    duration: float
    model: str
    voice: str
    language: str
    words: list[TimedWordOut]
    alignment: str = Field(description="How the times were found: whisper-forced (see docs/api.md).")


class ModelOut(BaseModel):
    id: str
    name: str
    type: str
    tier: str
    languages: list[str]
    supports_cloning: bool
    supports_streaming: bool
    credits_per_1k_chars: int | None
    status: Literal["ready", "loading", "unavailable"]
    unavailable_reason: str | None = None


class ModelsOut(BaseModel):
    models: list[ModelOut]


class VoiceOut(BaseModel):
    id: str
    name: str
    model: str
    language: str
    gender: Gender
    preview_url: str


class VoicesOut(BaseModel):
    voices: list[VoiceOut]
    total: int


class SttWordOut(BaseModel):
    word: str
    start: float
    end: float
    probability: float
    speaker: str | None = None


class SttSegmentOut(BaseModel):
    start: float
    end: float
    text: str
    # None unless diarize=true: no speaker is claimed without diarization.
    speaker: str | None


class SttResponse(BaseModel):
    text: str
    language: str
    duration: float
    segments: list[SttSegmentOut]
    words: list[SttWordOut] | None = Field(None, description="Present when timestamps=true.")


class OpenAISpeechRequest(BaseModel):
    """OpenAI's POST /v1/audio/speech body."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="tts-1, tts-1-hd, gpt-4o-mini-tts, or any speechmesh TTS model id.")
    input: SpeechText = Field(description="Text to speak; at most the plan's limit.")
    voice: str = Field(description="alloy, ash, ballad, coral, echo, fable, nova, onyx, sage, shimmer, verse, ...")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=limits.SYNTHESIS_SPEED_MIN, le=limits.SYNTHESIS_SPEED_MAX)
    instructions: str | None = Field(None, description="Accepted; no installed engine follows style instructions.")
    stream_format: Literal["audio", "sse"] = "audio"
