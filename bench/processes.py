"""The mesh as `make run` runs it, started for a bench: the TTS and STT services and the
gateway, each its own process (`python -m services.tts`, `python -m services.stt`,
`python -m gateway`) with supervisord.conf's environment, on free loopback ports, with a
temporary database and run folder. Only the processes a bench names are started.

Each process's CPU time and memory are read from /proc, so a bench can charge work to the
processes that did it and leave its own (the load generator's) out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from harness import bench_key, memory_mib

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 180.0
_TICKS = os.sysconf("SC_CLK_TCK")
_PROBLEM = re.compile(r" (ERROR|CRITICAL) |^[\w.]+(Error|Exception): ")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def machine_cpu_seconds() -> float:
    """CPU seconds every core of the machine has been busy (/proc/stat: all but idle and iowait)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = Path("/proc/stat").read_text().split()[1:9]
    return sum(int(value) for value in (user, nice, system, irq, softirq, steal)) / _TICKS


async def check_health(channel: grpc.aio.Channel, timeout: float) -> str:
    """The service's overall gRPC health (grpc.health.v1 Check): SERVING, NOT_SERVING, or
    the status code's name when the call failed."""
    try:
        # types-grpcio-health-checking's HealthStub declares no methods.
        reply = await health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
            health_pb2.HealthCheckRequest(), timeout=timeout
        )
    except grpc.aio.AioRpcError as error:
        return str(error.code().name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def cpu_seconds(self) -> float:
        """User + system CPU of every thread so far (utime and stime of /proc/<pid>/stat)."""
        # The command name, field 2, may hold spaces: count fields after its closing bracket.
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def memory_mib(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MiB."""
        return memory_mib(self.popen.pid)

    def problems(self) -> list[str]:
        """The log's error lines (the plain format: level after the time) and the last line
        of each traceback (the exception)."""
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if _PROBLEM.search(line)]

    def alive(self) -> None:
        if self.popen.poll() is not None:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; its log ends:\n{tail}")


@dataclass
class Deployment:
    processes: dict[str, Process] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)  # service -> host:port
    gateway_url: str = ""
    key: str = ""

    def cpu_seconds(self) -> dict[str, float]:
        """Each process's CPU seconds so far."""
        return {name: process.cpu_seconds() for name, process in self.processes.items()}

    def other_work(self) -> Callable[[], float]:
        """A stopwatch of work on the machine that is neither these processes' nor this
        one's: call it for the cores such work has used on average since."""

        def ours() -> float:
            return sum(self.cpu_seconds().values()) + time.process_time()

        machine, own, started = machine_cpu_seconds(), ours(), time.monotonic()

        def cores() -> float:
            other = machine_cpu_seconds() - machine - (ours() - own)
            return max(0.0, other) / max(time.monotonic() - started, 1e-9)

        return cores


def _environment(folder: Path, settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without any SPEECHMESH_ setting (a developer's shell may
    hold some), plus supervisord.conf's and these."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SPEECHMESH_")}
    env.update(PYTHONUNBUFFERED="1", GRPC_ENABLE_FORK_SUPPORT="false", SPEECHMESH_RUN_DIR=str(folder))
    return {**env, **settings}


def _start(name: str, module: str, folder: Path, settings: dict[str, str]) -> Process:
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env=_environment(folder, settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Process(name, popen, log)


async def _serving(process: Process, address: str, deadline: float) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        while await check_health(channel, timeout=1.0) != "SERVING":
            process.alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{process.name} was not SERVING within {START_TIMEOUT_SECONDS:.0f} s")
            await asyncio.sleep(0.2)


async def _gateway_ready(process: Process, url: str, services: list[str], deadline: float) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        while True:
            process.alive()
            with contextlib.suppress(httpx.TransportError):
                reply = await http.get("/readyz")
                if reply.status_code == 200 and all(
                    reply.json()["capabilities"].get(service) == "serving" for service in services
                ):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the gateway was not ready within {START_TIMEOUT_SECONDS:.0f} s")
            await asyncio.sleep(0.2)


def _stop(processes: list[Process]) -> None:
    for process in processes:
        if process.popen.poll() is None:
            process.popen.terminate()
    for process in processes:
        try:
            process.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()


@contextlib.asynccontextmanager
async def deployment(folder: Path, services: list[str]) -> AsyncIterator[Deployment]:
    """`services` (tts, stt) and a gateway in front of them, SERVING and ready, with an
    `internal` key; logs and the database in `folder`. Stopped (SIGTERM) on the way out."""
    mesh = Deployment()
    database = folder / "gateway.db"
    gateway_env = {
        "SPEECHMESH_GATEWAY_PORT": str(free_port()),
        "SPEECHMESH_GATEWAY_DATABASE_PATH": str(database),
        "SPEECHMESH_GATEWAY_LOG_JSON": "false",
    }
    try:
        for service in services:
            prefix = f"SPEECHMESH_{service.upper()}_"
            port = free_port()
            mesh.addresses[service] = f"127.0.0.1:{port}"
            gateway_env[f"SPEECHMESH_GATEWAY_{service.upper()}_ADDRESS"] = mesh.addresses[service]
            env = {f"{prefix}PORT": str(port), f"{prefix}LOG_JSON": "false", f"{prefix}GRACE_SECONDS": "2"}
            mesh.processes[service] = _start(service, f"services.{service}", folder, env)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        await asyncio.gather(*(_serving(mesh.processes[s], mesh.addresses[s], deadline) for s in services))
        mesh.processes["gateway"] = _start("gateway", "gateway", folder, gateway_env)
        mesh.gateway_url = f"http://127.0.0.1:{gateway_env['SPEECHMESH_GATEWAY_PORT']}"
        await _gateway_ready(mesh.processes["gateway"], mesh.gateway_url, services, deadline)
        # After the gateway made its schema: the key goes into the same database file.
        mesh.key = await bench_key(database)
        yield mesh
    finally:
        _stop([mesh.processes[name] for name in ("gateway", *services) if name in mesh.processes])
