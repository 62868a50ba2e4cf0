"""Which upstream services are down, since when, and how long until they should be back.

The gateway follows each upstream's standard gRPC health (`grpc.health.v1.Health/Watch`) on
the channel it calls it through. An upstream is down while it is unreachable or reports
NOT_SERVING (loading its models, shutting down). From the outages it watched begin and end,
the tracker learns how long a restart takes here; before it has seen one it uses a
configured default. A 503 then says how long is left (`Retry-After`) instead of a constant.

Transport level only (gRPC, no web framework): part of the client layer every caller of the services uses.
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

log = logging.getLogger(__name__)

MIN_RETRY_AFTER_SECONDS = 1
# The median of a few recent restarts follows a lasting change (larger models, a slower
# machine) within a few outages, while one odd outage does not sway it.
_RESTARTS_REMEMBERED = 5
# Pause before watching again once a Watch stream ended, so a server that refuses Watch
# (UNIMPLEMENTED) is not called in a tight loop. An unreachable one is not polled at all:
# the call waits for the channel to connect.
_REWATCH_SECONDS = 0.25


@dataclass
class _Upstream:
    # Monotonic time the current outage began; None while SERVING.
    down_since: float | None
    # Whether the current outage began while watched: one already under way when the
    # gateway started says nothing about how long a restart takes.
    outage_watched: bool = False
    restarts: deque[float] = field(default_factory=lambda: deque(maxlen=_RESTARTS_REMEMBERED))


class Availability:
    """The state of each named upstream, fed by `watch` (or `set_serving`)."""

    def __init__(
        self, names: Iterable[str], default_restart_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._default_restart = default_restart_seconds
        # Until its first SERVING, each upstream counts as down since the gateway started.
        now = clock()
        self._upstreams = {name: _Upstream(down_since=now) for name in names}

    def set_serving(self, name: str, serving: bool) -> None:
        """Records `name`'s health; an outage that ends is remembered as a restart."""
        upstream = self._upstreams[name]
        now = self._clock()
        if serving and upstream.down_since is not None:
            took = now - upstream.down_since
            if upstream.outage_watched:
                upstream.restarts.append(took)
            upstream.down_since = None
            log.info("upstream %s serving after %.1f s", name, took, extra={"upstream": name, "down_seconds": took})
        elif not serving and upstream.down_since is None:
            upstream.down_since = now
            upstream.outage_watched = True
            log.warning("upstream %s down", name, extra={"upstream": name})

    def expected_restart(self, name: str) -> float:
        """Seconds `name` takes from going down to SERVING again: learned, or the default."""
        restarts = self._upstreams[name].restarts
        return statistics.median(restarts) if restarts else self._default_restart

    def seconds_left(self, name: str) -> float | None:
        """Estimated seconds until `name` is back (0 when overdue), or None while it is up."""
        down_since = self._upstreams[name].down_since
        if down_since is None:
            return None
        return max(0.0, self.expected_restart(name) - (self._clock() - down_since))

    def retry_after(self, called: Iterable[str] = ()) -> int:
        """The `Retry-After` seconds of a request whose call to an upstream failed as unavailable.

        `called` names the upstreams the request called (all of them when it is not known);
        the one that failed is down, so the longest estimate among those down now covers it.
        When none is down yet (the failure arrived before its Watch stream ended), the outage
        has just begun: a whole restart. Never below 1 s; an overdue restart gets 1 s.
        """
        names = [name for name in called if name in self._upstreams] or list(self._upstreams)
        left = [seconds for name in names if (seconds := self.seconds_left(name)) is not None]
        if not left:
            left = [self.expected_restart(name) for name in names]
        return max([MIN_RETRY_AFTER_SECONDS, *(math.ceil(seconds) for seconds in left)])

    async def watch(self, name: str, channel: grpc.aio.Channel) -> None:
        """Follows `name`'s health on `channel` until cancelled."""
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                # wait_for_ready: while the service is unreachable the call waits for the
                # channel to connect (it retries on its reconnect backoff) instead of failing.
                # types-grpcio-health-checking's HealthStub declares no methods.
                watch = stub.Watch(health_pb2.HealthCheckRequest(), wait_for_ready=True)  # type: ignore[attr-defined]
                async for reply in watch:
                    self.set_serving(name, reply.status == health_pb2.HealthCheckResponse.SERVING)
            except grpc.aio.AioRpcError as error:
                log.debug("health watch ended", extra={"upstream": name, "grpc_code": error.code().name})
            self.set_serving(name, False)
            await asyncio.sleep(_REWATCH_SECONDS)
