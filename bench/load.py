"""`make bench`: the mesh as `make run` runs it, measured in one bounded run.

    make bench                        # ~6 minutes on 2 cores; rewrites docs/performance.md
    make bench BENCH_ARGS=--quick     # ~2.5 minutes, the same measurements with fewer samples
    .venv/bin/python bench/load.py [--quick] [--no-docs]

Starts the TTS and STT services and the gateway, each its own process (bench/processes.py),
loads Piper, Kokoro and Whisper base in this process too, then measures:
1. per operation, the same request called directly on the engine, through the gRPC client
   and through the gateway, alternating (medians, ratios to direct), and streaming time to
   first audio through the gateway, MP3 and WAV, Piper and Kokoro (bench/per_request.py);
2. 1/4/16/32 closed-loop clients against the gateway for a fixed time per level, TTS
   (Piper) and STT (Whisper base): throughput, latency, refusals, health-check latency, CPU
   seconds per request and the throughput as a fraction of what the cores allow
   (bench/load_clients.py);
3. the resident memory of every process at the end.
Prints the tables and writes them into docs/performance.md (bench/load_report.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

import grpc
import httpx
from engine_calls import VOICES, load_recognizer, load_synthesizers
from load_clients import RETRY_AFTER_CAP_SECONDS, Request, run_level
from load_report import Loaded, Overhead, Plan, rewrite
from load_section import Run, section
from mesh_calls import stt_gateway, tts_body, tts_gateway
from per_request import streaming, stt_overhead, tts_overhead
from processes import ROOT, Deployment, deployment, machine_cpu_seconds

from services.stt.recognizer import Recognizer
from services.stt.settings import SttSettings
from services.tts.synthesizer import Synthesizer
from speechmesh.clients.config import ClientConfig, ServiceTarget
from speechmesh.clients.mesh import Mesh

SHORT_TEXT = "Each client asks for this sentence to be read aloud to them."
# Real speech, 7.1 s at 16 kHz: the Debian package pocketsphinx-testdata (the Makefile installs it).
SPEECH = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav")
SPEECH_LABEL = "STT whisper (base), 7.1 s wav"
TTS_MODELS = ("piper", "kokoro")
FULL = Plan(runs=5, stream_runs=10, budget=30.0, warmup=3.0, seconds=12.0, stt_seconds=20.0)
QUICK = Plan(runs=2, stream_runs=4, budget=6.0, warmup=1.5, seconds=4.0, stt_seconds=8.0)
DirectEngines = tuple[dict[str, Synthesizer], Recognizer]


def load_direct() -> DirectEngines:
    """The engines the direct calls use, as the services configure them."""
    settings = SttSettings(models_dir=ROOT / "var/models", log_json=False, log_level="WARNING")
    return load_synthesizers(list(TTS_MODELS)), load_recognizer(settings, "whisper")


async def per_request(
    plan: Plan, direct: Awaitable[DirectEngines], running: Deployment, http: httpx.AsyncClient, speech: bytes
) -> list[Overhead]:
    engines, whisper = await direct
    mesh = Mesh(ClientConfig(**{s: ServiceTarget(address=a) for s, a in running.addresses.items()}))
    try:
        await mesh.health()  # connects the channels before anything is timed
        rows = [await tts_overhead(plan, engines[model], model, mesh, http) for model in TTS_MODELS]
        rows.append(await stt_overhead(plan, whisper, mesh, http, speech, SPEECH_LABEL))
    finally:
        await mesh.close()
    return rows


async def under_load(plan: Plan, running: Deployment, http: httpx.AsyncClient, speech: bytes) -> list[Loaded]:
    def tts(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return tts_gateway(client, tts_body(SHORT_TEXT, "piper", VOICES["piper"], "wav"))

    def stt(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return stt_gateway(client, speech, "whisper")

    operations: list[tuple[str, str, Request, float]] = [
        (f"TTS piper, {len(SHORT_TEXT)} chars, wav", "tts", tts, plan.seconds),
        (SPEECH_LABEL.replace(" (base)", ""), "stt", stt, plan.stt_seconds),
    ]
    channels = {service: grpc.aio.insecure_channel(address) for service, address in running.addresses.items()}
    rows = []
    try:
        for name, service, request, seconds in operations:
            levels = []
            for clients in plan.levels:
                level = await run_level(http, request, clients, plan.warmup, seconds, channels, running.cpu_seconds)
                print(f"  {name}, {clients} clients: {level.throughput:.2f} req/s {dict(level.statuses)}", flush=True)
                levels.append(level)
            rows.append(Loaded(name, service, levels))
    finally:
        for channel in channels.values():
            await channel.close()
    return rows


async def main(plan: Plan, quick: bool, write_docs: bool, logs: Path | None) -> None:
    started, load_average = time.monotonic(), os.getloadavg()[0]
    machine, own = machine_cpu_seconds(), time.process_time()
    if not SPEECH.exists():
        raise SystemExit(f"{SPEECH} is missing: install the Debian package pocketsphinx-testdata")
    speech = SPEECH.read_bytes()
    # Loaded in a thread while the services start: the two overlap on the cores.
    direct = asyncio.create_task(asyncio.to_thread(load_direct))
    with contextlib.ExitStack() as stack:
        folder = logs or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="speechmesh-bench-")))
        folder.mkdir(parents=True, exist_ok=True)
        async with deployment(folder, ["tts", "stt"]) as running:
            print(f"mesh ready after {time.monotonic() - started:.0f} s", flush=True)
            headers = {"Authorization": f"Bearer {running.key}"}
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            async with httpx.AsyncClient(
                base_url=running.gateway_url, headers=headers, timeout=300, limits=limits
            ) as http:
                others = running.other_work()
                costs = await per_request(plan, direct, running, http, speech)
                phases = {"one request at a time": others()}
                print(f"per request done at {time.monotonic() - started:.0f} s", flush=True)
                others = running.other_work()
                streams = await streaming(plan, TTS_MODELS, http)
                phases["streaming"] = others()
                print(f"streaming done at {time.monotonic() - started:.0f} s", flush=True)
                loads = await under_load(plan, running, http, speech)
            memory = {name: process.memory_mib() for name, process in running.processes.items()}
            ours = sum(running.cpu_seconds().values()) + time.process_time() - own
            other_cores = (machine_cpu_seconds() - machine - ours) / (time.monotonic() - started)
        problems = {name: process.problems() for name, process in running.processes.items()}
    wall = time.monotonic() - started
    run = Run(plan, quick, load_average, wall, RETRY_AFTER_CAP_SECONDS, max(0.0, other_cores), phases, problems)
    text = section(run, costs, streams, loads, memory)
    print("\n".join(text))
    if write_docs:
        rewrite(ROOT / "docs/performance.md", text)
        print("\nwritten into docs/performance.md")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, shorter levels (~2.5 minutes)")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/performance.md alone")
    parser.add_argument("--logs", type=Path, help="keep the processes' logs and database in this folder")
    arguments = parser.parse_args()
    asyncio.run(main(QUICK if arguments.quick else FULL, arguments.quick, not arguments.no_docs, arguments.logs))
