"""The "Under load" section of docs/performance.md: `make bench`'s tables with the prose that
says how they were measured, and notes on what in this run stands out, found by rules (so
a rerun never leaves a note about figures it replaced)."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import numpy as np
from load_report import Loaded, Overhead, Plan, Streaming, load_table, memory_table, overhead_table, streaming_table

# Health checks slower than this under load mean the event loop or the gRPC threads wait
# behind engine work: a probe with a 1 s deadline would start failing at a few times this.
SLOW_HEALTH_SECONDS = 0.1


@dataclass(frozen=True)
class Run:
    """How the run went, besides its measurements."""

    plan: Plan
    quick: bool
    load_average: float  # 1-minute, before the run
    wall: float  # seconds, the whole run
    retry_cap: float  # longest Retry-After a client honours
    other_cores: float  # cores that work not of this run used on average
    phase_other_cores: dict[str, float]  # the same during the phases before the levels
    problems: dict[str, list[str]]  # process -> its log's error lines


def _share(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def notes(run: Run, costs: list[Overhead], loads: list[Loaded]) -> list[str]:
    """What a reader should not miss: throughput falling as clients are added, slow or
    failed health checks, answers other than 200 and the expected refusals, errors logged."""
    found = [
        f"{name} logged {len(lines)} error lines, the first: `{lines[0][:160]}`"
        for name, lines in run.problems.items()
        if lines
    ]
    found += [
        f"Other work used {cores:.2f} of a core during {phase}: those figures are slower than on a quiet machine."
        for phase, cores in run.phase_other_cores.items()
        if cores > 0.25
    ]
    for cost in costs:
        if min(np.median(cost.service), np.median(cost.gateway)) < 0.9 * np.median(cost.direct):
            found.append(
                f"{cost.operation}: a mesh path faster than the direct call by over 10 % "
                "(noise, or the two do different work)."
            )
    for row in loads:
        others = [level.other_cpu_seconds / level.seconds for level in row.levels]
        if max(others) > 0.25:
            found.append(
                f"{row.operation}: other work on the machine used {_share(others)} of a core during the levels; "
                "the mesh had that much less than the CPU-bound limit assumes."
            )
        for fewer, more in zip(row.levels, row.levels[1:], strict=False):
            if more.throughput < 0.95 * fewer.throughput:
                found.append(
                    f"{row.operation}: {more.throughput:.2f} req/s at {more.clients} clients, below "
                    f"{fewer.throughput:.2f} at {fewer.clients}."
                )
        for level in row.levels:
            health = level.health.get(row.service, [])
            if health and max(health) > SLOW_HEALTH_SECONDS:
                found.append(
                    f"{row.operation}, {level.clients} clients: a health check took {max(health) * 1000:.0f} ms "
                    f"(p50 {np.percentile(health, 50) * 1000:.0f} ms)."
                )
            unexpected = {s: n for s, n in level.statuses.items() if s not in ("200", "503", "429")}
            if unexpected or level.unhealthy:
                found.append(
                    f"{row.operation}, {level.clients} clients: answers {unexpected or 'as expected'}, "
                    f"health not SERVING {dict(level.unhealthy) or 'never'}."
                )
    return found or ["Nothing: throughput never fell as clients were added, health stayed under 100 ms."]


def section(
    run: Run,
    costs: list[Overhead],
    streams: list[Streaming],
    loads: list[Loaded],
    memory: dict[str, tuple[float, float]],
) -> list[str]:
    plan = run.plan
    cores = len(os.sched_getaffinity(0))
    levels = [level for row in loads for level in row.levels]
    generator = [level.generator_cpu_seconds / level.seconds for level in levels]
    others = [level.other_cpu_seconds / level.seconds for level in levels]
    command = "make bench BENCH_ARGS=--quick" if run.quick else "make bench"
    phases = ", ".join(f"{cores:.2f} during {phase}" for phase, cores in run.phase_other_cores.items())
    return [
        f"Figures from one run of `{command}` on {datetime.date.today().isoformat()}: {cores} cores, "
        f"{run.wall:.0f} s in all. The machine is shared: the 1-minute load average before the run was "
        f"{run.load_average:.1f}, and work that was not this run's used {run.other_cores:.2f} of a core on "
        f"average over it ({phases}; `/proc/stat` less this run's processes), so compare within the run. "
        "`bench/load.py` starts the TTS and STT services and the gateway as their own processes (`python -m "
        "services.tts`, `services.stt`, `gateway`, with supervisord.conf's environment, free loopback ports and a "
        "temporary database holding an `internal` key) and rewrites everything between these markers.",
        "",
        "**One request at a time**: direct (the engine object called in the bench's process with the service's "
        "settings, `bench/engine_calls.py`), service (the gRPC client of `speechmesh.clients` to the service "
        "process) and gateway (HTTP to the gateway process, which calls the service), alternating; medians of "
        f"up to {plan.runs} rounds ({plan.budget:.0f} s a row at most). Voices: Piper en_US-joe-medium, Kokoro "
        "jm_kumo. STT: LibriVox speech (pocketsphinx-testdata, 16 kHz WAV), language detected, VAD on.",
        "",
        *overhead_table(costs),
        "",
        '**Streaming, time to first audio** through the gateway (`"stream": true`, the same sentence): the first '
        f"byte of the body; every stream is read to its end. Up to {plan.stream_runs} streams a row after one to "
        "warm up.",
        "",
        *streaming_table(streams),
        "",
        "**Concurrency**: closed-loop clients on keep-alive loopback connections to the gateway, "
        f"{plan.warmup:.1f} s of warm-up, then {plan.seconds:.0f} s (TTS) or {plan.stt_seconds:.0f} s (STT) "
        "measured; the requests in flight at the end are awaited, not counted. req/s: the 200s answered in the "
        "window; the latencies are theirs. Not 200: the other answers in the window by status (a client answered "
        f"503 or 429 waits its `Retry-After`, at most {run.retry_cap:.0f} s). Health: grpc.health.v1 `Check` of "
        "the loaded service once a second on a channel of its own. CPU s/req: utime + stime of the TTS, STT and "
        "gateway processes over the window (`/proc/<pid>/stat`) per successful request, and the gateway's part "
        f"of it; the CPU-bound limit is {cores} cores over that, and the last column the throughput against it. "
        f"The clients (the bench's process) used {_share(generator)} of a core on top, other work on the machine "
        f"{_share(others)}.",
        "",
        *load_table(loads, cores),
        "",
        "**Memory** of each process at the end of the run (`/proc/<pid>/status`; VmHWM is the peak):",
        "",
        *memory_table(memory),
        "",
        "What stands out in this run (found by the script's rules):",
        "",
        *(f"- {note}" for note in notes(run, costs, loads)),
    ]
