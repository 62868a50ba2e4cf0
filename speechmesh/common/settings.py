"""Settings every gRPC service shares; each service subclasses them with its own prefix.

Values come from the environment (`SPEECHMESH_<SERVICE>_PORT=...`, nested fields with
`__`) or from keyword arguments, which is how tests pass them explicitly.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Where a model runs: in the service's own process, or in a Triton Inference Server that the
# service calls (speechmesh/triton/, docs/deploy.md).
Runtime = Literal["inproc", "triton"]


class TritonSettings(BaseModel):
    url: str = Field(
        "127.0.0.1:8001", description="Triton's gRPC address (host:port) for models whose runtime is triton."
    )
    urls: dict[str, str] = Field(
        {}, description="Triton addresses by model id, overriding url (one Triton deployment per model)."
    )
    ready_timeout_seconds: float = Field(
        600.0,
        gt=0,
        description="How long loading waits for Triton to serve the model (it may start after the service).",
    )

    def address(self, model: str) -> str:
        return self.urls.get(model, self.url)


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the gRPC server binds.")
    port: int = Field(0, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus /metrics port; 0 disables the endpoint.")
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Threads that run CPU-bound engine calls off the event loop.",
    )
    max_in_flight: int = Field(
        0, ge=0, description="Calls of one model that run at once; 0: as many as `workers` (runtime/admission.py)."
    )
    max_queued: int = Field(
        8, ge=0, description="Calls of one model that may wait for a turn; more are refused at once (OVERLOADED)."
    )
    grace_seconds: float = Field(10.0, ge=0, description="How long in-flight calls may finish after SIGTERM.")
    log_level: str = Field("INFO", description="Python logging level name.")
    log_json: bool = Field(True, description="One JSON object per log line.")
    tracing: Literal["none", "console", "otlp"] = Field(
        "none", description="OpenTelemetry span export: none, console (stderr), or otlp (OTLP/gRPC to otlp_endpoint)."
    )
    otlp_endpoint: str = Field(
        "", description="OTLP/gRPC collector (http://host:4317); unset: OTEL_EXPORTER_OTLP_ENDPOINT or localhost:4317."
    )
    runtime: dict[str, Runtime] = Field(
        {},
        description="Where each model runs, by model id: inproc (in this process, the default) or triton "
        "(the Triton model of that name at triton.url).",
    )
    triton: TritonSettings = TritonSettings()

    def on_triton(self, model: str) -> bool:
        return self.runtime.get(model, "inproc") == "triton"
