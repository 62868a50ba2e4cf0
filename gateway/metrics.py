"""Prometheus metrics of the gateway's HTTP traffic, and the port they are served on.

Every request is counted by route template (`/v1/tts/`, not the path a caller typed, so a
scan of random paths cannot blow up the label set: unmatched paths count as `unmatched`),
method and status; its latency to the end of the response body goes into a histogram, and
requests in progress into a gauge. What the platform decides (admitted requests, credits
charged, 429s) is counted where it is decided (gateway/policy.py).

`/metrics` is served on its own port (`metrics_port`), bound like the API to `host`, never
on the public API port: the figures tell an outsider how busy each route and key is.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "speechmesh_gateway_http_requests",
    "HTTP requests answered, by route, method and status.",
    ["route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "speechmesh_gateway_http_seconds",
    "Time from a request's arrival to the end of its response body, by route and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
HTTP_IN_FLIGHT = Gauge("speechmesh_gateway_http_in_flight", "HTTP requests in progress.")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class HttpMetricsMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        counted = False

        def count() -> None:
            nonlocal counted
            if not counted:
                counted = True
                route, method = _route(scope), scope["method"]
                HTTP_REQUESTS.labels(route, method, str(status)).inc()
                HTTP_SECONDS.labels(route, method).observe(time.perf_counter() - started)

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            # Counted when the body has gone, not when the app returns (it settles credits
            # after that), so the figure is the caller's wait and is there once it has its answer.
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                count()

        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, sending)
        finally:
            HTTP_IN_FLIGHT.dec()
            # Status 0: no response was sent (the client left first, or the server failed).
            count()
