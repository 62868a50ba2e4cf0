"""Gateway configuration (environment prefix SPEECHMESH_GATEWAY_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from speechmesh.clients.config import ClientConfig, ServiceTarget

_STT_REPLY_MAX_BYTES = 64 * 1024 * 1024


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPEECHMESH_GATEWAY_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(8000, ge=0, le=65535, description="HTTP port.")
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Prometheus /metrics port, never the API's (gateway/metrics.py); 0: none."
    )
    database_path: Path = Field(Path("var/speechmesh.db"), description="SQLite file of the gateway's data.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy async URL of the gateway's database (postgresql+asyncpg://...); "
        "unset: SQLite at database_path.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis (redis://host:6379/0) shared by every gateway process: rate limits, requests "
        "at once and the task queue. Unset: kept in this process (limits) and the database (tasks).",
    )
    results_dir: Path | None = Field(
        None, description="Folder of stored results when s3_bucket is unset; unset: 'results' beside the database."
    )
    s3_bucket: str | None = Field(None, description="S3 bucket of stored results instead of results_dir.")
    s3_endpoint_url: str | None = Field(
        None, description="Endpoint of an S3-compatible store (MinIO, SeaweedFS); unset: AWS. Credentials: boto3's."
    )
    result_seconds: int = Field(86400, gt=0, description="How long results stay downloadable (the page: 24 h).")
    conversation_seconds: float = Field(
        30 * 24 * 3600, gt=0, description="How long a voice-chat conversation lives after its last turn."
    )
    english_stt_model: str = Field(
        "faster-whisper",
        description="STT model of a live voice chat whose start message says English (Whisper tiny.en: a third of "
        "base's time); other languages get the STT service's default.",
    )
    credit_hold_seconds: float = Field(
        7200.0,
        gt=0,
        description="When credits held by a request whose gateway process died go back to the key; "
        "longer than any request may take.",
    )
    starting_credits: int = Field(1000, ge=0, description="Credits the first-run key (make run) starts with.")
    webhook_allow_private: bool = Field(
        False,
        description="Let webhook_url point at loopback, private and link-local addresses (off: such URLs are "
        "refused, so a caller cannot make the gateway POST into its own network).",
    )
    public_url: str | None = Field(
        None,
        description="Base URL clients reach the gateway at, for the result_url of webhooks "
        "(https://speech.example.com); unset: http://host:port.",
    )
    webhook_retry_seconds: float = Field(
        5.0,
        gt=0,
        description="Wait before the first retry of a webhook the receiver did not take (then 3x longer each).",
    )
    worker_metrics_port: int = Field(
        9110, ge=0, le=65535, description="Prometheus port of the task worker (python -m gateway.worker); 0: none."
    )
    task_workers: int = Field(2, ge=1, le=64, description="Tasks one worker process runs at once (threads).")
    task_lease_seconds: float = Field(
        30.0,
        gt=0,
        description="How long a worker owns a running task without renewing its lease; a task whose worker "
        "died is run again after it.",
    )
    key_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a live API key is remembered after a lookup: a key revoked by another "
        "process (the key CLI, another replica) keeps working here that long. 0: look up every request.",
    )
    tts_address: str = Field(
        "127.0.0.1:50051",
        description="gRPC target of the TTS service: host:port, or dns:///name:port for every replica.",
    )
    tts_routes: dict[str, str] = Field(
        {},
        description="Per-model TTS pods: model id -> gRPC target of the TTS service serving it "
        '(JSON, e.g. {"kokoro": "dns:///tts-kokoro-headless:50051"}); other models go to tts_address.',
    )
    stt_address: str = Field("127.0.0.1:50052", description="gRPC target of the STT service.")
    audio_address: str | None = Field(None, description="gRPC target of the Audio service; unset: not deployed.")
    chat_address: str | None = Field(None, description="gRPC target of the Chat service; unset: not deployed.")
    rpc_timeout_seconds: float = Field(300.0, gt=0, description="Deadline of one upstream call.")
    stt_timeout_seconds: float = Field(
        3600.0, gt=0, description="Deadline of one transcription: 100 MB of audio can be hours of speech."
    )
    audio_timeout_seconds: float = Field(
        3600.0, gt=0, description="Deadline of one audio tool call: an hour of audio can take many minutes."
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
    tracing: Literal["none", "console", "otlp"] = Field(
        "none", description="OpenTelemetry span export: none, console (stderr), or otlp (OTLP/gRPC to otlp_endpoint)."
    )
    otlp_endpoint: str = Field(
        "", description="OTLP/gRPC collector (http://host:4317); unset: OTEL_EXPORTER_OTLP_ENDPOINT or localhost:4317."
    )
    log_level: str = Field("INFO", description="Python logging level name.")
    log_json: bool = Field(True, description="One JSON object per log line.")


def client_config(settings: GatewaySettings) -> ClientConfig:
    """The gateway's view of the mesh. A transcript of hours of speech with word times can
    pass gRPC's 4 MB default reply size, hence STT's larger bound."""
    return ClientConfig(
        tts=ServiceTarget(
            address=settings.tts_address, models=settings.tts_routes, timeout_seconds=settings.rpc_timeout_seconds
        ),
        stt=ServiceTarget(
            address=settings.stt_address,
            timeout_seconds=settings.stt_timeout_seconds,
            max_receive_bytes=_STT_REPLY_MAX_BYTES,
        ),
        audio=ServiceTarget(address=settings.audio_address, timeout_seconds=settings.audio_timeout_seconds)
        if settings.audio_address
        else None,
        chat=ServiceTarget(address=settings.chat_address, timeout_seconds=settings.rpc_timeout_seconds)
        if settings.chat_address
        else None,
        restart_seconds=settings.upstream_restart_seconds,
        health_timeout_seconds=settings.health_timeout_seconds,
    )
