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
