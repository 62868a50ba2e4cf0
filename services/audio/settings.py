"""Configuration of the audio service (environment prefix SPEECHMESH_AUDIO_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from speechmesh.common.settings import ServiceSettings


class AudioSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SPEECHMESH_AUDIO_", env_nested_delimiter="__", extra="ignore")

    port: int = Field(50053, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    engines: list[str] = Field(
        [
            "deepfilternet3",
            "rnnoise",
            "wpe",
            "repet-hpss",
            "demucs",
            "key-tempo",
            "world-convert",
            "world-prosody",
        ],
        description="Models to load, by id; one whose package or weights are missing is listed as unavailable.",
    )
    default_denoiser: str = Field("deepfilternet3", description="Denoiser of enhance when a request names none.")
    # The page's default is demucs, whose weights cannot be had here: the DSP separator is
    # the default that works. With demucs weights in models_dir, set this to "demucs".
    default_separator: str = Field("repet-hpss", description="Separator used when a request names none.")
    default_voice_converter: str = Field("world-convert", description="Voice converter when a request names none.")
    default_restyler: str = Field("world-prosody", description="Speech-to-speech model when a request names none.")
    threads: int = Field(
        1,
        ge=1,
        description="Threads of one model call (the d-vector embedder, demucs' torch). Calls run `workers` at "
        "a time, so workers x threads should not pass the cores.",
    )
    models_dir: Path = Field(Path("var/models"), description="Folder of model weights: demucs/ holds demucs models.")
    # Denoising, dereverberation and separation run on segments, so memory does not grow
    # with the input; CPU time does (docs/performance.md has each operation's RTF: the DSP
    # separator's 0.05 makes an hour 3 minutes of a core). An hour covers podcasts,
    # interviews and albums' tracks.
    max_audio_seconds: float = Field(
        3600, gt=0, description="Longest input enhance, dereverb, separate and convert take."
    )
    # WORLD analysis costs ~0.5 s of CPU per second of speech: 20 minutes is 10 of CPU.
    max_speech_seconds: float = Field(
        1200, gt=0, description="Longest input voice conversion and speech-to-speech take."
    )
    segment_seconds: float = Field(30.0, ge=5, le=120, description="Length of the segments engines get.")
    overlap_seconds: float = Field(1.0, gt=0, le=5, description="Overlap of consecutive segments, crossfaded.")
    tts_address: str = Field(
        "",
        description="gRPC target of the TTS service, which speaks the target voices of voice conversion; "
        "empty: conversion toward built-in voices is unavailable.",
    )
    tts_routes: dict[str, str] = Field(
        {}, description="Per-model TTS pods, as the gateway's SPEECHMESH_GATEWAY_TTS_ROUTES (model id -> target)."
    )
    tts_timeout_seconds: float = Field(60.0, gt=0, description="Deadline of one call to the TTS service.")
    voice_profiles: int = Field(32, ge=1, description="Target voice profiles kept measured (each a few KB).")
