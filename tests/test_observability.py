"""Observability across processes: a TTS service run as its own process (`python -m
services.tts`) and a gateway, both exporting spans by OTLP to a collector on loopback and
serving Prometheus metrics on their own ports. One request must show up as one trace that
crosses the gateway -> service hop, in the service's log lines (by trace id) and in both
processes' metrics; `/metrics` must not be on the public API port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import running_gateway
from tests.servers import free_port, free_ports


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver: keeps (service name, span) of every span exported to it.
    A server of its own threads: the gateway in this process flushes its spans at shutdown
    blocking the event loop, which an asyncio server could not answer from."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Any]] = []

    def Export(self, request: Any, context: Any) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            service = next(a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name")
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend((service, span) for span in scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def collector() -> Iterator[tuple[Collector, str]]:
    received = Collector()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(received, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield received, f"http://127.0.0.1:{port}"
    finally:
        server.stop(0)


@pytest.fixture
def tts_process(tmp_path: Path, collector: tuple[Collector, str]) -> Iterator[tuple[int, int, Path]]:
    """`python -m services.tts` (Piper only) with OTLP tracing and metrics: (gRPC port,
    metrics port, its stderr log)."""
    port, metrics_port = free_ports(2)
    log = tmp_path / "tts.log"
    env = {
        **os.environ,
        "SPEECHMESH_TTS_PORT": str(port),
        "SPEECHMESH_TTS_METRICS_PORT": str(metrics_port),
        "SPEECHMESH_TTS_ENGINES": '["piper"]',
        "SPEECHMESH_TTS_TRACING": "otlp",
        "SPEECHMESH_TTS_OTLP_ENDPOINT": collector[1],
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    with log.open("wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "services.tts"], env=env, stderr=stderr)
    try:
        yield port, metrics_port, log
    finally:
        process.terminate()
        process.wait(timeout=30)


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def _value(text: str, name: str, labels: dict[str, str]) -> float:
    return sum(value for found, value in _samples(text, name) if found == labels)


async def _started(port: int, timeout: float = 120) -> None:
    """Once the process listens and its health says SERVING."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        async with asyncio.timeout(timeout):
            while True:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    reply = await health.Check(health_pb2.HealthCheckRequest(), wait_for_ready=True, timeout=5)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                await asyncio.sleep(0.1)


async def _until(condition, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def test_one_request_is_one_trace_across_the_hop_in_spans_logs_and_metrics(
    tmp_path: Path, collector: tuple[Collector, str], tts_process: tuple[int, int, Path]
) -> None:
    received, endpoint = collector
    port, service_metrics_port, service_log = tts_process
    await _started(port)
    gateway_metrics_port = free_port()
    posted = {"route": "/v1/tts/", "method": "POST", "status": "200"}
    before = REGISTRY.get_sample_value("speechmesh_gateway_http_requests_total", posted) or 0.0
    async with running_gateway(
        f"127.0.0.1:{port}",
        tmp_path / "gateway.db",
        tracing="otlp",
        otlp_endpoint=endpoint,
        metrics_port=gateway_metrics_port,
    ) as gateway:
        async with gateway.client(await gateway.key("internal")) as http:
            response = await http.post("/v1/tts/", json={"model": "piper", "text": "Hello there.", "format": "wav"})
            assert response.status_code == 200
            assert (await http.get("/metrics")).status_code == 404
        async with httpx.AsyncClient() as scraper:
            gateway_metrics = (await scraper.get(f"http://127.0.0.1:{gateway_metrics_port}/metrics")).text
            service_metrics = (await scraper.get(f"http://127.0.0.1:{service_metrics_port}/metrics")).text

    # Metrics: the request counted by route template at the gateway (whose registry other
    # tests in this process add to), the RPC at the service.
    posted = {"route": "/v1/tts/", "method": "POST", "status": "200"}
    assert _value(gateway_metrics, "speechmesh_gateway_http_requests_total", posted) == before + 1
    assert _samples(gateway_metrics, "speechmesh_gateway_http_seconds_count")
    rpcs = _samples(service_metrics, "speechmesh_rpc_total")
    assert ({"service": "tts", "method": "Synthesize", "code": "OK"}, 1.0) in rpcs
    assert ({"service": "tts", "model": "piper"}, 1.0) in _samples(service_metrics, "speechmesh_real_time_factor_count")
    assert ({"service": "tts"}, 1.0) in _samples(service_metrics, "speechmesh_service_ready")
    assert ({"service": "tts", "model": "piper"}, 1.0) in _samples(service_metrics, "speechmesh_model_available")

    # Spans: the service's server span is the child of the gateway's client span, in one trace.
    def synthesize_spans() -> list[tuple[str, object]]:
        return [(service, span) for service, span in received.spans if span.name.endswith("/Synthesize")]

    await _until(lambda: {service for service, _ in synthesize_spans()} >= {"speechmesh-gateway", "speechmesh-tts"})
    [client] = [span for service, span in synthesize_spans() if service == "speechmesh-gateway"]
    [served] = [span for service, span in synthesize_spans() if service == "speechmesh-tts"]
    assert served.trace_id == client.trace_id
    assert served.parent_span_id == client.span_id
    [http_root] = [
        span
        for service, span in received.spans
        if service == "speechmesh-gateway" and span.trace_id == client.trace_id and not span.parent_span_id
    ]
    assert "/v1/tts/" in http_root.name

    # Logs: the service's line for that RPC carries the trace id.
    trace_id = served.trace_id.hex()

    def rpc_lines() -> list[dict]:
        lines = [json.loads(line) for line in service_log.read_text().splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("message") == "rpc" and line.get("method") == "Synthesize"]

    await _until(lambda: bool(rpc_lines()))
    assert [line["trace_id"] for line in rpc_lines()] == [trace_id]


def test_every_series_the_dashboard_plots_is_one_speechmesh_exports() -> None:
    import gateway.metrics
    import gateway.policy  # noqa: F401
    import speechmesh.runtime.metrics  # noqa: F401

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    exported = {family.name + suffix for family in REGISTRY.collect() for suffix in suffixes.get(family.type, ("",))}
    dashboard = json.loads((Path(__file__).parents[1] / "deploy/grafana/speechmesh.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    plotted = {name for expr in expressions for name in re.findall(r"\b((?:speechmesh|process)_[a-z_]+)", expr)}
    assert plotted and plotted <= exported, plotted - exported
