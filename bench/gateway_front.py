"""What the gateway's HTTP front costs: `ConnectionGuard` (body pacing, disconnect watch) and
the h11 protocol with header timeouts and lingering close, against the same app without
them, in the same run.

Each variant is its own gateway process (`serve`, no upstream needed); the load comes from
this process: concurrent clients on keep-alive connections, alternating rounds between the
variants, each round a fixed time. Requests:
- `GET /healthz` (no body: the disconnect watch starts at once);
- `POST /v1/tts/` with a key and a body the gateway refuses after reading it (400): the
  key lookup, the paced body read and JSON validation, and no upstream.
Prints requests per second per variant and the guarded/bare ratio.

    .venv/bin/python -m bench.gateway_front [--clients 16] [--seconds 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.harness import bench_key

REQUESTS = {
    "GET /healthz": ("GET", "/healthz", None),
    "POST /v1/tts/ (400)": ("POST", "/v1/tts/", b'{"text": "   "}'),
}


def serve(port: int, database: Path, bare: bool) -> None:
    import uvicorn

    from gateway.app import create_app
    from gateway.connection import ConnectionGuard
    from gateway.http_protocol import http_protocol
    from gateway.settings import GatewaySettings

    settings = GatewaySettings(database_path=database, port=port, log_level="WARNING", log_json=False)
    app = create_app(settings)
    if bare:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not ConnectionGuard]
    http = "h11" if bare else http_protocol(settings.header_timeout_seconds)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", http=http)


@contextlib.contextmanager
def gateway(port: int, database: Path, bare: bool) -> Iterator[str]:
    argv = [sys.executable, "-m", "bench.gateway_front", "serve", str(port), str(database)]
    process = subprocess.Popen([*argv, "--bare"] if bare else argv)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait()


async def rate(base: str, key: str, request: tuple[str, str, bytes | None], clients: int, seconds: float) -> float:
    method, path, body = request
    deadline = time.perf_counter() + seconds
    done = 0

    async def client() -> None:
        nonlocal done
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=base, headers=headers) as http:
            while time.perf_counter() < deadline:
                reply = await http.request(method, path, content=body)
                assert reply.status_code in (200, 400), reply.text
                done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "bench.db"
        key = asyncio.run(bench_key(database))
        results: dict[tuple[str, bool], list[float]] = {}
        with gateway(18101, database, bare=False) as guarded, gateway(18102, database, bare=True) as bare:
            for _ in range(args.rounds):
                for name, request in REQUESTS.items():
                    for is_bare, base in ((False, guarded), (True, bare)):
                        value = asyncio.run(rate(base, key, request, args.clients, args.seconds))
                        results.setdefault((name, is_bare), []).append(value)
    print(f"{args.clients} clients, {args.rounds} rounds of {args.seconds:g} s per variant, {os.cpu_count()} cores")
    for name in REQUESTS:
        guarded_rate = statistics.median(results[(name, False)])
        bare_rate = statistics.median(results[(name, True)])
        print(
            f"  {name:22} guarded {guarded_rate:7.0f} req/s  bare {bare_rate:7.0f} req/s  "
            f"ratio {guarded_rate / bare_rate:.3f}"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]), Path(sys.argv[3]), bare="--bare" in sys.argv)
    else:
        main()
