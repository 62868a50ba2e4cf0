"""Triton runtime vs in-process, engine for engine, in one run on this machine.

    .venv/bin/python bench/triton.py [--rounds 5] [--concurrency 8]

Starts a real tritonserver (`python -m speechmesh.triton.server`) with Piper, Kokoro and
Whisper base, loads the same engines in this process, and times the same calls both ways,
interleaved round by round (medians):
- TTS, per model: time to the first block of speech and the real-time factor of a
  three-sentence text (the adapter streams Triton's decoupled responses; in-process is the
  engine's own iterator);
- STT: the real-time factor of one Recognize of a 7.1 s LibriVox clip (word times on), and
  throughput with `--concurrency` calls at once: in-process (the engine's shared decoder
  batches them), Triton with dynamic batching (deploy/triton/models/whisper as it is), and
  Triton without (the same model with its dynamic_batching block removed, from a copy of
  the repository: one request per execute).
Every ratio is Triton / in-process. The services and gateway add the same on both paths, so
they are left out (make bench measures them).
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from processes import free_port  # noqa: E402

from services.stt.engines.triton import TritonRecognizer  # noqa: E402
from services.stt.recognizer import RecognitionOptions, Recognizer  # noqa: E402
from services.stt.registry import build_registry as build_stt  # noqa: E402
from services.stt.settings import SttSettings  # noqa: E402
from services.tts.engines.triton import TritonSynthesizer  # noqa: E402
from services.tts.registry import build_registry as build_tts  # noqa: E402
from services.tts.settings import TtsSettings  # noqa: E402
from services.tts.synthesizer import SynthesisOptions, Synthesizer  # noqa: E402
from speechmesh.common.audio.decode import decode_audio  # noqa: E402
from speechmesh.common.settings import TritonSettings  # noqa: E402
from speechmesh.triton.server import REPOSITORY  # noqa: E402

TEXT = (
    "The committee met on Tuesday to review the budget for next year. "
    "Most of the discussion was about the new library and its opening hours. "
    "A final decision is expected before the end of the month."
)
CLIP = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav")


class Triton:
    """A tritonserver process with `models` of `repository`."""

    def __init__(self, repository: Path, models: list[str], run_dir: Path) -> None:
        ports: set[int] = set()
        while len(ports) < 3:  # picks one after another may repeat a port
            ports.add(free_port())
        grpc_port, http, metrics = sorted(ports)
        self.url = f"127.0.0.1:{grpc_port}"
        argv = [sys.executable, "-m", "speechmesh.triton.server", f"--repository={repository}", f"--run-dir={run_dir}"]
        argv += [f"--model={model}" for model in models]
        argv += [f"--grpc-port={grpc_port}", f"--http-port={http}", f"--metrics-port={metrics}"]
        env = {**os.environ, "SPEECHMESH_STT_MODELS_DIR": str(ROOT / "var" / "models")}
        self._log = (run_dir / "triton.log").open("wb")
        self._process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        started = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/ready", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if self._process.poll() is not None or time.monotonic() - started > 180:
                raise SystemExit(f"tritonserver did not start; see {run_dir / 'triton.log'}")
            time.sleep(0.2)
        self.load_seconds = time.monotonic() - started

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(30)
        self._log.close()


def first_block_and_rtf(engine: Synthesizer, voice: str) -> tuple[float, float]:
    started = time.perf_counter()
    blocks = engine.synthesize(TEXT, SynthesisOptions(voice=voice, language="en", speed=1.0))
    first = next(blocks)
    first_seconds = time.perf_counter() - started
    audio = first.duration_seconds + sum(block.duration_seconds for block in blocks)
    return first_seconds, (time.perf_counter() - started) / audio


def tts_rows(model: str, settings: TritonSettings, rounds: int) -> list[tuple[str, str, str, str]]:
    registry = build_tts(TtsSettings(engines=[model], default_model=model))
    registry.load()
    local, remote = registry.get(model)[1], TritonSynthesizer(model, settings)
    remote.load()
    voice = next(card.id for card in local.voices() if card.speaks("en"))
    ours, theirs = median_pairs(
        rounds,
        functools.partial(first_block_and_rtf, local, voice),
        functools.partial(first_block_and_rtf, remote, voice),
    )
    return [
        (
            f"{model} first audio",
            f"{ours[0] * 1000:.0f} ms",
            f"{theirs[0] * 1000:.0f} ms",
            f"{theirs[0] / ours[0]:.2f}",
        ),
        (f"{model} RTF", f"{ours[1]:.3f}", f"{theirs[1]:.3f}", f"{theirs[1] / ours[1]:.2f}"),
    ]


def median_pairs(
    rounds: int, local: Callable[[], tuple[float, ...]], remote: Callable[[], tuple[float, ...]]
) -> tuple[list[float], list[float]]:
    """Medians of each figure of `local()` and `remote()`, called alternately `rounds` times."""
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(local())
        theirs.append(remote())
    return [statistics.median(column) for column in zip(*ours, strict=True)], [
        statistics.median(c) for c in zip(*theirs, strict=True)
    ]


def throughput(recognizer: Recognizer, audio, concurrency: int, calls: int) -> float:
    """Recognize calls per second with `concurrency` at once, `calls` in all."""
    options = RecognitionOptions(word_timestamps=True)
    with ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        list(pool.map(lambda _: recognizer.recognize(audio, options), range(calls)))
        return calls / (time.perf_counter() - started)


def without_dynamic_batching(folder: Path) -> Path:
    """A copy of the repository whose whisper model has no dynamic batcher."""
    copy = folder / "models"
    shutil.copytree(REPOSITORY / "whisper", copy / "whisper")
    config = copy / "whisper" / "config.pbtxt"
    config.write_text("\n".join(line for line in config.read_text().splitlines() if "dynamic_batching" not in line))
    return copy


def rows(table: list[tuple[str, str, str, str]]) -> Iterator[str]:
    yield "| measure | in-process | Triton | Triton / in-process |"
    yield "|---|---|---|---|"
    for row in table:
        yield "| " + " | ".join(row) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    audio = decode_audio(CLIP.read_bytes()).mono()
    clip_seconds = len(audio) / 16000
    table: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as folder:
        triton = Triton(REPOSITORY, ["piper", "kokoro", "whisper"], Path(folder))
        settings = TritonSettings(url=triton.url)
        try:
            for model in ("piper", "kokoro"):
                table += tts_rows(model, settings, args.rounds)
            stt = build_stt(SttSettings(engines=["whisper"], models_dir=ROOT / "var" / "models"))
            stt.load()
            whisper, remote_whisper = stt.get("whisper")[1], TritonRecognizer("whisper", settings)
            remote_whisper.load()
            options = RecognitionOptions(word_timestamps=True)

            def rtf(recognizer: Recognizer) -> tuple[float]:
                started = time.perf_counter()
                recognizer.recognize(audio, options)
                return ((time.perf_counter() - started) / clip_seconds,)

            ours, theirs = median_pairs(args.rounds, lambda: rtf(whisper), lambda: rtf(remote_whisper))
            table.append(
                ("whisper RTF (7.1 s clip)", f"{ours[0]:.3f}", f"{theirs[0]:.3f}", f"{theirs[0] / ours[0]:.2f}")
            )
            calls = 2 * args.concurrency
            local_rate = throughput(whisper, audio, args.concurrency, calls)
            batched_rate = throughput(remote_whisper, audio, args.concurrency, calls)
        finally:
            triton.stop()
        unbatched = Triton(without_dynamic_batching(Path(folder)), ["whisper"], Path(folder))
        try:
            remote_whisper = TritonRecognizer("whisper", TritonSettings(url=unbatched.url))
            remote_whisper.load()
            unbatched_rate = throughput(remote_whisper, audio, args.concurrency, calls)
        finally:
            unbatched.stop()
    n = args.concurrency
    table.append(
        (
            f"whisper calls/s, {n} at once, dynamic batching",
            f"{local_rate:.2f}",
            f"{batched_rate:.2f}",
            f"{batched_rate / local_rate:.2f}",
        )
    )
    table.append(
        (
            f"whisper calls/s, {n} at once, no dynamic batching",
            f"{local_rate:.2f}",
            f"{unbatched_rate:.2f}",
            f"{unbatched_rate / local_rate:.2f}",
        )
    )
    print(f"Triton ready in {triton.load_seconds:.1f} s (piper, kokoro, whisper); {os.cpu_count()} cores")
    print("\n".join(rows(table)))


if __name__ == "__main__":
    main()
