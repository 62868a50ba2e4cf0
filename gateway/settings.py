"""Gateway configuration (environment prefix SPEECHMESH_GATEWAY_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
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
    # Measured with `make run`'s engines on 2 cores, from process start to SERVING: tts
    # 4.7-5.8 s, stt 7.6-10.1 s on quiet cores; 5-10.5 s and 13-19 s while other test runs
    # shared them (docs/development.md has the command). The slower service, quiet.
    upstream_restart_seconds: float = Field(
        10.0,
        gt=0,
        description="How long a dead upstream takes to be SERVING again, until the gateway has seen one "
        "restart: a 503's Retry-After counts down from it.",
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="Time a client has to send a request's headers before 408 and a closed connection."
    )
    body_idle_seconds: float = Field(
        30.0, gt=0, description="Longest pause within a request body before 408 (and at its start, a grace period)."
    )
    body_min_bytes_per_second: int = Field(
        8 * 1024, gt=0, description="Average pace a request body must keep after the grace period, or 408."
    )
    url_signing_secret: SecretStr | None = Field(
        None,
        min_length=16,
        description="Secret that signs preview URLs; set the same value on every gateway replica. "
        "Unset: one is made and kept in the database.",
    )
    signed_url_seconds: int = Field(86400, gt=0, description="How long a signed URL (a voice preview) stays valid.")
    log_level: str = Field("INFO", description="Python logging level name.")
    log_json: bool = Field(True, description="One JSON object per log line.")
