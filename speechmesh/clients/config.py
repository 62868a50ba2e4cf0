"""Where each service is and how long a call to it may take: the one client configuration.

An address is anything gRPC resolves: `host:port`, `dns:///tts-headless:50051` (every
address the name resolves to, balanced round-robin: a Kubernetes headless Service gives one
per pod) or `ipv4:10.0.0.1:50051,10.0.0.2:50051`. A service whose models run in pods of
their own names them in `models` (model id -> address); other models go to `address`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_MIB = 1024 * 1024


class ServiceTarget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str = Field(min_length=1, description="gRPC target of the service.")
    models: dict[str, str] = Field(default_factory=dict, description="Per-model pods: model id -> gRPC target.")
    timeout_seconds: float = Field(300.0, gt=0, description="Deadline of one call, unless the caller gives one.")
    max_receive_bytes: int = Field(4 * _MIB, gt=0, description="Largest reply accepted (gRPC's default is 4 MiB).")


class ClientConfig(BaseModel):
    """The services a caller uses; one left out is not deployed for that caller."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tts: ServiceTarget | None = None
    stt: ServiceTarget | None = None
    audio: ServiceTarget | None = None
    chat: ServiceTarget | None = None
    # At least 30 s: the services refuse pings more often than that (speechmesh/runtime/server.py).
    keepalive_seconds: float = Field(
        60.0, ge=30, description="Ping interval on a channel with calls in flight, so a dead peer is noticed."
    )
    retry_attempts: int = Field(
        3, ge=1, le=5, description="Attempts of an idempotent call that failed as UNAVAILABLE (1: no retry)."
    )
    restart_seconds: float = Field(
        10.0, gt=0, description="How long a service takes to restart, until one restart has been seen."
    )
    health_timeout_seconds: float = Field(1.0, gt=0, description="Deadline of one health check.")
