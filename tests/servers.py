"""Real backing servers for the tests that need one: Redis, PostgreSQL, an S3 (moto) and Triton.

Each is an async context manager that starts the server on loopback on a free port, with its
files in a temporary folder, waits until it answers, yields its URL, and stops it on exit
(asks it to stop, then kills it). Everything goes through asyncio subprocesses: the tests'
event loop also serves a gateway, so nothing here may block it. CI installs the Debian
`redis-server` and `postgresql` packages (`make test`), moto (the `dev` extra) and Triton (the
`triton` extra and nvidia-pytriton's wheel).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

REDIS_SERVER = Path("/usr/bin/redis-server")
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
# The role initdb makes (a superuser, trusted on loopback).
POSTGRES_USER = "speechmesh"

START_SECONDS = 15.0
STOP_SECONDS = 10.0


def free_port() -> int:
    """A loopback port nothing listens on now (the OS's pick for port 0)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` different loopback ports nothing listens on now: picked while all are held, as
    picks one after another may return the same port (two Triton ports collided so)."""
    with contextlib.ExitStack() as held:
        probes = [held.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def _tail(log: Path, characters: int = 2000) -> str:
    try:
        return log.read_text(errors="replace")[-characters:]
    except OSError:
        return ""


async def _start(argv: list[str], log: Path, **options: object) -> asyncio.subprocess.Process:
    """`argv` in its own process group, stdout and stderr to `log`."""
    with log.open("ab") as output:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            **options,  # type: ignore[arg-type]
        )


async def _stop(process: asyncio.subprocess.Process, stop_signal: int = signal.SIGTERM) -> None:
    """Sends `stop_signal`, then SIGKILL if the process is still there after STOP_SECONDS."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(stop_signal)
    try:
        await asyncio.wait_for(process.wait(), STOP_SECONDS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


async def _wait_until(
    name: str,
    process: asyncio.subprocess.Process,
    log: Path,
    answers: Callable[[], Awaitable[None]],
    start_seconds: float = START_SECONDS,
) -> None:
    """Returns once `answers()` succeeds; raises if the server exits or `start_seconds` pass first."""
    deadline = time.monotonic() + start_seconds
    while True:
        if process.returncode is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} before answering:\n{_tail(log)}")
        try:
            async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                await answers()
            return
        except Exception as error:  # any failure to answer means: not up yet
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"{name} did not answer within {start_seconds:.0f} s ({error!r}):\n{_tail(log)}"
                ) from error
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def redis_server(tmp_path: Path) -> AsyncIterator[str]:
    """Debian's redis-server, nothing persisted: yields `redis://127.0.0.1:PORT/0`."""
    from redis.asyncio import Redis

    if not REDIS_SERVER.exists():
        raise RuntimeError(f"{REDIS_SERVER} is missing: apt-get install redis-server (make test does)")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    log = tmp_path / "redis.log"
    argv = [str(REDIS_SERVER), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = await _start([*argv, "--dir", str(tmp_path)], log)

    async def ping() -> None:
        client = Redis.from_url(url)
        try:
            await client.ping()
        finally:
            await client.aclose()

    try:
        await _wait_until("redis-server", process, log, ping)
        yield url
    finally:
        await _stop(process)


@contextlib.asynccontextmanager
async def postgres_server(tmp_path: Path) -> AsyncIterator[str]:
    """A fresh PostgreSQL 15 cluster (trust authentication, no fsync): yields
    `postgresql+asyncpg://speechmesh@127.0.0.1:PORT/postgres`.

    initdb and postgres refuse to run as root; as root they run as the `postgres` user the
    Debian package makes, on a folder of their own: pytest's temporary folders are private to
    root (mode 700), so the cluster lives in a new folder in the system's temporary directory,
    removed on exit. `tmp_path` keeps the server's log."""
    import asyncpg

    initdb, postgres = POSTGRES_BIN / "initdb", POSTGRES_BIN / "postgres"
    if not postgres.exists():
        raise RuntimeError(f"{postgres} is missing: apt-get install postgresql (make test does)")
    options: dict[str, object] = {}
    base = Path(tempfile.mkdtemp(prefix="speechmesh-pg-"))
    try:
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "PostgreSQL refuses to run as root and there is no `postgres` user to run it as "
                    "(the Debian postgresql package makes one): install it, or run the tests as another user"
                ) from None
            os.chown(base, owner.pw_uid, owner.pw_gid)
            options = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": [], "cwd": base}
        data, log = base / "data", tmp_path / "postgres.log"
        setup = await _start(
            [
                str(initdb),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                POSTGRES_USER,
                "--no-sync",
                "-E",
                "UTF8",
                "--no-locale",
            ],
            log,
            **options,
        )
        try:
            async with asyncio.timeout(60):
                code = await setup.wait()
        finally:
            await _stop(setup)
        if code != 0:
            raise RuntimeError(f"initdb failed ({code}):\n{_tail(log)}")

        port = free_port()
        argv = [str(postgres), "-D", str(data), "-p", str(port), "-k", str(base)]
        argv += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"]
        process = await _start(argv, log, **options)

        async def connect() -> None:
            connection = await asyncpg.connect(host="127.0.0.1", port=port, user=POSTGRES_USER, database="postgres")
            await connection.close()

        try:
            await _wait_until("postgres", process, log, connect)
            yield f"postgresql+asyncpg://{POSTGRES_USER}@127.0.0.1:{port}/postgres"
        finally:
            # SIGINT: PostgreSQL's fast shutdown (SIGTERM waits for every client to leave).
            await _stop(process, signal.SIGINT)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.asynccontextmanager
async def s3_server(tmp_path: Path) -> AsyncIterator[str]:
    """moto's server (an in-memory S3, among others): yields its endpoint URL. Clients still
    need credentials and a region (any values): AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
    AWS_DEFAULT_REGION."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "moto.log"
    process = await _start([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], log)

    async def get() -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            await client.get(url)

    try:
        await _wait_until("moto server", process, log, get)
        yield url
    finally:
        await _stop(process)


@contextlib.asynccontextmanager
async def triton_server(tmp_path: Path, models: list[str], env: dict[str, str]) -> AsyncIterator[str]:
    """A real tritonserver (`python -m speechmesh.triton.server`) with these models of
    deploy/triton/models, their engines set up by `env` (SPEECHMESH_TTS_*, ...): yields its
    gRPC address once every model is ready."""
    import httpx

    grpc_port, http_port, metrics_port = free_ports(3)
    argv = [sys.executable, "-m", "speechmesh.triton.server", *(f"--model={model}" for model in models)]
    argv += [f"--grpc-port={grpc_port}", f"--http-port={http_port}", f"--metrics-port={metrics_port}"]
    log = tmp_path / "triton.log"
    process = await _start([*argv, f"--run-dir={tmp_path}"], log, env={**os.environ, **env})

    async def ready() -> None:
        async with httpx.AsyncClient() as http:
            (await http.get(f"http://127.0.0.1:{http_port}/v2/health/ready")).raise_for_status()

    try:
        # Each model's engine loads in its own stub process: ~3 s on quiet cores, more on busy ones.
        await _wait_until("tritonserver", process, log, ready, start_seconds=120)
        yield f"127.0.0.1:{grpc_port}"
    finally:
        await _stop(process)
