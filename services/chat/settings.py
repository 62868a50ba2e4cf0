"""Configuration of the chat service (environment prefix SPEECHMESH_CHAT_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from speechmesh.common.settings import ServiceSettings


class ChatSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SPEECHMESH_CHAT_", env_nested_delimiter="__", extra="ignore")

    port: int = Field(50054, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    engines: list[str] = Field(
        ["smollm2-135m", "apertium", "world-preserve"],
        description="Models to load, by id (smollm2-135m, openai-compatible, apertium, world-preserve); one that "
        "cannot load is "
        "listed as unavailable.",
    )
    default_model: str = Field(
        "smollm2-135m", description="The language model of voice chat: smollm2-135m or openai-compatible."
    )
    context_tokens: int = Field(2048, ge=256, description="Context of one conversation in the in-process model.")
    parallel: int = Field(
        2,
        ge=1,
        description="Replies written at once: the in-process model's slots, and the most concurrent requests to an "
        "OpenAI-compatible server.",
    )
    threads: int = Field(2, ge=1, description="Threads of the in-process model.")
    gguf_path: Path | None = Field(None, description="Another GGUF chat model to run instead of SmolLM2-135M.")
    # About 70 words, 20-30 s of speech: an answer to listen to, not a page to read.
    reply_tokens: int = Field(96, ge=16, le=2048, description="Longest reply, in tokens; cut at a sentence end.")
    openai_base_url: str = Field(
        "", description="Base URL of an OpenAI-compatible server for the openai-compatible model (…/v1)."
    )
    openai_api_key: str = Field("", description="Its API key (sent as a bearer token); empty: none.")
    openai_model: str = Field("", description="The model name that server is asked for.")
    openai_context_tokens: int = Field(8192, ge=256, description="That model's context.")
    openai_timeout_seconds: float = Field(60.0, gt=0, description="Deadline of one reply from that server.")
    stt_address: str = Field("", description="gRPC target of the STT service; empty: speech input is unavailable.")
    tts_address: str = Field("", description="gRPC target of the TTS service; empty: replies cannot be spoken.")
    tts_routes: dict[str, str] = Field(
        {}, description="Per-model TTS pods, as the gateway's SPEECHMESH_GATEWAY_TTS_ROUTES (model id -> target)."
    )
    upstream_timeout_seconds: float = Field(600.0, gt=0, description="Deadline of one call to STT or TTS.")
    stt_model: str = Field("", description="STT model of voice chat and translation; empty: the STT service's default.")
    # A question said to be English needs no language detection: Whisper tiny.en hears a
    # short one in a third of base's time (docs/performance.md, voice chat).
    english_stt_model: str = Field(
        "faster-whisper", description="STT model of a voice-chat turn whose language is given as English."
    )
    default_voice: str = Field("jf_nezumi", description="Voice of replies when a request names none.")
    default_tts_model: str = Field("kokoro", description="TTS model of replies when a request names none.")
    voice_preference: list[str] = Field(
        ["kokoro", "piper", "espeak", "festival"],
        description="Models whose voices are preferred, in order, for a language the default voice does not speak.",
    )
    # A question rarely lasts a minute; five leave room for a long one and bound the STT work.
    max_speech_seconds: float = Field(300.0, gt=0, description="Longest spoken question of a voice-chat turn.")
    max_translate_seconds: float = Field(1200.0, gt=0, description="Longest speech speech-translate takes.")
