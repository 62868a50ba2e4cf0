"""What `make bench` found, as Markdown: printed, and written into docs/performance.md between
two marker comments (the rest of the file is left as it is).

The section's prose that does not depend on the run lives here with the tables, so a rerun
rewrites figures and their description together and nothing stale stays behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from load_clients import Level

BEGIN = "<!-- make bench: begin (written by bench/load.py; edits inside are overwritten) -->"
END = "<!-- make bench: end -->"
HEADING = "## Under load (`make bench`)"


@dataclass(frozen=True)
class Plan:
    """How much of each measurement a run takes."""

    runs: int  # alternating rounds per operation: direct, service, gateway
    stream_runs: int  # streams per model and format
    budget: float  # seconds an operation's rounds may take (streams: half of it per format)
    warmup: float  # seconds per concurrency level before its window
    seconds: float  # the measured window of each TTS level
    stt_seconds: float  # and of each STT level: a transcription takes seconds, so fewer fit
    levels: tuple[int, ...] = (1, 4, 16, 32)


@dataclass
class Overhead:
    operation: str
    direct: list[float]
    service: list[float]
    gateway: list[float]


@dataclass
class Streaming:
    model: str
    audio_format: str
    first_audio: list[float]


@dataclass
class Loaded:
    operation: str
    service: str  # whose health is reported: the one doing the work
    levels: list[Level]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def overhead_table(rows: list[Overhead]) -> list[str]:
    lines = [
        "| operation | direct s | service (gRPC) s | gateway (HTTP) s | service/direct | gateway/direct | rounds |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        direct, service, gateway = (float(np.median(v)) for v in (row.direct, row.service, row.gateway))
        lines.append(
            f"| {row.operation} | {direct:.3f} | {service:.3f} | {gateway:.3f} | "
            f"{service / direct:.3f} | {gateway / direct:.3f} | {len(row.direct)} |"
        )
    return lines


def streaming_table(rows: list[Streaming]) -> list[str]:
    lines = ["| model | format | first audio p50 ms | p95 ms | runs |", "|---|---|---|---|---|"]
    for row in rows:
        values = row.first_audio
        lines.append(
            f"| {row.model} | {row.audio_format} | {_ms(_pct(values, 50))} | {_ms(_pct(values, 95))} | {len(values)} |"
        )
    return lines


def _statuses(level: Level) -> str:
    others = {status: count for status, count in sorted(level.statuses.items()) if status != "200"}
    return ", ".join(f"{status}: {count}" for status, count in others.items()) or "none"


def load_table(rows: list[Loaded], cores: int) -> list[str]:
    lines = [
        "| operation | clients | req/s | p50 s | p95 s | max s | not 200 | health p50 / max ms "
        "| CPU s/req | gateway's part | CPU-bound limit req/s | of limit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for level in row.levels:
            health = level.health.get(row.service, [])
            unhealthy = f" ({level.unhealthy[row.service]} not SERVING)" if level.unhealthy[row.service] else ""
            latency = (
                f"{_pct(level.latencies, 50):.2f} | {_pct(level.latencies, 95):.2f} | {max(level.latencies):.2f}"
                if level.latencies
                else "- | - | -"
            )
            cost = "- | - | - | -"
            if level.latencies:
                per_request = level.cpu_seconds / len(level.latencies)
                limit = cores / per_request
                gateway = level.cpu.get("gateway", 0.0) / level.cpu_seconds
                cost = f"{per_request:.3f} | {gateway:.0%} | {limit:.2f} | {level.throughput / limit:.0%}"
            lines.append(
                f"| {row.operation} | {level.clients} | {level.throughput:.2f} | {latency} | {_statuses(level)} | "
                f"{_ms(_pct(health, 50))} / {_ms(max(health, default=float('nan')))}{unhealthy} | {cost} |"
            )
    return lines


def memory_table(memory: dict[str, tuple[float, float]]) -> list[str]:
    lines = ["| process | VmRSS MiB | VmHWM MiB |", "|---|---|---|"]
    lines += [f"| {name} | {rss:.0f} | {peak:.0f} |" for name, (rss, peak) in memory.items()]
    return lines


def rewrite(doc: Path, section: list[str]) -> None:
    """Puts `section` between the markers, or, the first time, under a new heading before
    the first section of the file."""
    text = doc.read_text()
    block = "\n".join([BEGIN, *section, END])
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        first = text.index("\n## ")
        text = f"{text[: first + 1]}{HEADING}\n\n{block}\n{text[first:]}"
    doc.write_text(text)
