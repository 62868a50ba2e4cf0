"""Gateway configuration (environment prefix SPEECHMESH_GATEWAY_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPEECHMESH_GATEWAY_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(8000, ge=0, le=65535, description="HTTP port.")
    database_path: Path = Field(Path("var/speechmesh.db"), description="SQLite file holding API keys.")
    tts_address: str = Field("127.0.0.1:50051", description="host:port of the TTS gRPC service.")
    tts_routes: dict[str, str] = Field(
        {},
        description="Per-model TTS pods: model id -> host:port of the TTS service serving it "
        '(JSON, e.g. {"kokoro": "tts-kokoro:50051"}); other models go to tts_address.',
    )
    stt_address: str = Field("127.0.0.1:50052", description="host:port of the STT gRPC service.")
    rpc_timeout_seconds: float = Field(300.0, gt=0, description="Deadline of one upstream call.")
    stt_timeout_seconds: float = Field(
        3600.0, gt=0, description="Deadline of one transcription: 100 MB of audio can be hours of speech."
    )
    health_timeout_seconds: float = Field(1.0, gt=0, description="Deadline of one upstream health check.")
    log_level: str = Field("INFO", description="Python logging level name.")
    log_json: bool = Field(True, description="One JSON object per log line.")
