"""Configuration of the TTS service (environment prefix SPEECHMESH_TTS_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from speechmesh.common.settings import ServiceSettings


class PiperSettings(BaseModel):
    threads: int = Field(0, ge=0, description="onnxruntime intra-op threads; 0 lets it choose.")
    voices_dir: Path | None = Field(
        None, description="Folder with more Piper voices (<id>.onnx + <id>.onnx.json) to load."
    )


class TtsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SPEECHMESH_TTS_", env_nested_delimiter="__", extra="ignore")

    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    engines: list[str] = Field(["piper"], description="Engines to load, by model id.")
    default_model: str = Field("piper", description="Model used when a request names none.")
    piper: PiperSettings = PiperSettings()
