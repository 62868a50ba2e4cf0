"""Per-model TTS pods against one pod for every engine: request latency and memory.

    .venv/bin/python bench/tts_pods.py [--runs 10]

Starts three real TTS services as their own processes (so their memory can be read
from /proc): "single" with Piper, Kokoro, eSpeak, Festival and world-adapt, as
deploy/k8s ran it before; "default" with all but Kokoro and "kokoro" with Kokoro alone,
as deploy/k8s/base runs them now. Two gateways in this process front them: one plain,
one with `tts_routes={"kokoro": ...}`. Per model, alternates the same request through
each and prints median wall times and split/single ratio; then one clone through each of
a 26 s Festival slt reference (world-adapt lives in the default pod), then two clones and
two long Kokoro texts at once through each (the pods run 2 workers), and every process's
resident memory once loaded and at its peak.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
from harness import gateway_client, memory_mib

from speechmesh.speakers.world import PROFILE_TEXT

TEXT = "Per-model pods let each engine scale on its own. This request measures what routing costs."
REQUESTS = {
    "piper": {"model": "piper", "voice": "en_US-joe-medium"},
    "kokoro": {"model": "kokoro", "voice": "jm_kumo"},
    "espeak": {"model": "espeak", "voice": "espeak-en-us-m"},
}
PODS = {
    "single": (50161, ["piper", "kokoro", "espeak", "festival"], ["world-adapt"]),
    "default": (50162, ["piper", "espeak", "festival"], ["world-adapt"]),
    "kokoro": (50163, ["kokoro"], []),
}


@contextlib.contextmanager
def services() -> Iterator[dict[str, subprocess.Popen]]:
    started: dict[str, subprocess.Popen] = {}
    try:
        for name, (port, engines, cloners) in PODS.items():
            env = {
                **os.environ,
                "SPEECHMESH_TTS_PORT": str(port),
                "SPEECHMESH_TTS_ENGINES": json.dumps(engines),
                "SPEECHMESH_TTS_DEFAULT_MODEL": engines[0],
                "SPEECHMESH_TTS_CLONERS": json.dumps(cloners),
                "SPEECHMESH_TTS_LOG_LEVEL": "WARNING",
                "SPEECHMESH_TTS_METRICS_PORT": "0",
            }
            started[name] = subprocess.Popen([sys.executable, "-m", "services.tts"], env=env)
        yield started
    finally:
        for process in started.values():
            process.terminate()
            process.wait()


async def wait_ready(http: httpx.AsyncClient, processes: dict[str, subprocess.Popen]) -> None:
    while True:
        upstreams = (await http.get("/readyz")).json()["upstreams"]
        if all(state == "SERVING" for name, state in upstreams.items() if name.startswith("tts")):
            return
        if any(process.poll() is not None for process in processes.values()):
            raise RuntimeError("a TTS service exited")
        await asyncio.sleep(0.2)


async def timed(http: httpx.AsyncClient, path: str, **kwargs) -> float:
    started = time.perf_counter()
    reply = await http.post(path, **kwargs)
    reply.raise_for_status()
    return time.perf_counter() - started


@contextlib.asynccontextmanager
async def gateways() -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    port = {name: spec[0] for name, spec in PODS.items()}
    async with (
        gateway_client(tts_address=f"127.0.0.1:{port['single']}") as single,
        gateway_client(
            tts_address=f"127.0.0.1:{port['default']}", tts_routes={"kokoro": f"127.0.0.1:{port['kokoro']}"}
        ) as split,
    ):
        yield single, split


async def main(runs: int) -> None:
    with services() as processes:
        async with gateways() as (single, split):
            await wait_ready(single, processes)
            await wait_ready(split, processes)
            loaded = {name: memory_mib(process.pid)[0] for name, process in processes.items()}
            print(f"{runs} runs per model; text of {len(TEXT)} characters as WAV")
            print(f"{'model':8} {'single s':>9} {'split s':>8} {'ratio':>7}")
            for model, fields in REQUESTS.items():
                body = {"text": TEXT, "format": "wav", **fields}
                for http in (single, split):
                    await timed(http, "/v1/tts/", json=body)  # warm both paths
                one, two = [], []
                for _ in range(runs):
                    one.append(await timed(single, "/v1/tts/", json=body))
                    two.append(await timed(split, "/v1/tts/", json=body))
                a, b = statistics.median(one), statistics.median(two)
                print(f"{model:8} {a:9.3f} {b:8.3f} {b / a:7.3f}")
            # A stranger's voice to clone: Festival's slt reading PROFILE_TEXT twice (~26 s,
            # near the 30 s the API recommends at most).
            reference = {"text": f"{PROFILE_TEXT} {PROFILE_TEXT}", "model": "festival", "voice": "festival-us-slt"}
            data = (await single.post("/v1/tts/", json={**reference, "format": "wav"})).content
            files = {"reference_audio": ("reference.wav", data)}
            for name, http in (("single", single), ("split", split)):
                seconds = await timed(http, "/v1/tts/clone/", files=files, data={"text": TEXT})
                print(f"first clone through {name}: {seconds:.1f} s")
            # Load as the pods meet it (2 workers each): two clones and two long Kokoro texts at once.
            long_kokoro = {"text": " ".join([TEXT] * 6), "format": "wav", **REQUESTS["kokoro"]}
            for http in (single, split):
                await asyncio.gather(
                    *(timed(http, "/v1/tts/clone/", files=files, data={"text": TEXT}) for _ in range(2)),
                    *(timed(http, "/v1/tts/", json=long_kokoro) for _ in range(2)),
                )
            peak = {name: memory_mib(process.pid)[1] for name, process in processes.items()}
    print(f"\n{'pod':8} {'loaded MiB':>11} {'peak MiB':>9}")
    for name in PODS:
        print(f"{name:8} {loaded[name]:11.0f} {peak[name]:9.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.runs))
