"""Prometheus metrics recorded for every RPC of every service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RPC_TOTAL = Counter("speechmesh_rpc_total", "RPCs finished, by method and status code.", ["service", "method", "code"])
RPC_SECONDS = Histogram(
    "speechmesh_rpc_seconds",
    "Wall time from call start to its last message, by method.",
    ["service", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
RPC_IN_FLIGHT = Gauge("speechmesh_rpc_in_flight", "RPCs in progress, by method.", ["service", "method"])

# Backpressure (speechmesh/runtime/admission.py), per model.
QUEUE_DEPTH = Gauge("speechmesh_queue_depth", "Calls waiting for a turn, by model.", ["service", "model"])
MODEL_IN_FLIGHT = Gauge("speechmesh_model_in_flight", "Calls running, by model.", ["service", "model"])
ADMISSION_REFUSED = Counter(
    "speechmesh_admission_refused_total", "Calls refused because the model's queue was full.", ["service", "model"]
)
# 1 once the service finished loading its engines, 0 before; per model, 1 when it serves.
SERVICE_READY = Gauge("speechmesh_service_ready", "1 once the service's engines are loaded.", ["service"])
MODEL_AVAILABLE = Gauge(
    "speechmesh_model_available", "1 when the model serves, 0 when it is listed unavailable.", ["service", "model"]
)
REAL_TIME_FACTOR = Histogram(
    "speechmesh_real_time_factor",
    "Wall time of a call over the seconds of audio it made or read (below 1: faster than real time).",
    ["service", "model"],
    buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5),
)


def observe_real_time_factor(service: str, model: str, wall_seconds: float, audio_seconds: float) -> None:
    if audio_seconds > 0:
        REAL_TIME_FACTOR.labels(service, model).observe(wall_seconds / audio_seconds)
