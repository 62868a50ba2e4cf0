"""docs/api.md's examples cannot rot: every cURL, Python and JavaScript block of its
"Examples" section is cut out and run, as a reader would run it, against the real gateway
and services, and what it printed or wrote is checked (audio that decodes, a ZIP with its
files, JSON with the documented keys, speech heard back in transcripts).

The examples read `SPEECHMESH_URL`, `SPEECHMESH_API_KEY` and `TASK_ID` from the environment
and open `speech.wav` and `song.wav` in their working directory: made here (Piper speaking,
a composed song), and the task is a finished batch that a worker (`python -m gateway.worker`)
ran. Each example runs in a folder of its own, several at once (subprocesses on the event
loop that also serves the gateway: a blocking call would freeze it).

And the section stays complete: every endpoint the app serves (the OpenAPI document's
operations and its WebSockets) has an example in each language (the WebSocket: Python and
JavaScript; curl cannot stream its audio frames), and each has a check here.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from gateway.app import create_app
from gateway.settings import GatewaySettings
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.audio.pcm import Pcm
from tests.conftest import Gateway, decode

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "api.md"
LANGUAGES = ("sh", "python", "js")
WEBSOCKET_LANGUAGES = ("python", "js")  # curl cannot stream a live session's audio frames
SPEECH = "The library opens at nine in the morning and closes early on Sundays, so please return your books on time."
# Examples at once: each waits on the services more than it computes.
PARALLEL = 4
EXAMPLE_SECONDS = 240


@dataclass(frozen=True)
class Example:
    endpoint: str  # "POST /v1/tts/", "WebSocket /v1/voice-chat/live"
    language: str  # sh, python, js
    code: str

    @property
    def name(self) -> str:
        return f"{self.language} {self.endpoint}"


def examples() -> list[Example]:
    """The fenced blocks under each `### <endpoint>` heading of the Examples section."""
    section = DOC.read_text().split("\n## Examples\n", 1)[1].split("\n## ", 1)[0]
    found = []
    for block in re.split(r"^### ", section, flags=re.M)[1:]:
        endpoint = block.splitlines()[0].strip()
        for language, code in re.findall(r"^```(sh|python|js)\n(.*?)^```$", block, flags=re.M | re.S):
            found.append(Example(endpoint, language, code))
    return found


EXAMPLES = examples()


# ---------------------------------------------------------------- what each endpoint's examples leave


@dataclass
class Outcome:
    example: Example
    workdir: Path
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def report(self) -> str:
        head = f"{self.example.name} (exit {self.returncode}, {self.seconds:.1f} s)"
        return f"{head}\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"

    def json(self) -> Any:
        return json.loads(self.stdout)


Check = Callable[[Outcome], None]


def audio_file(*names: str) -> Check:
    """One of `names` was written and decodes as at least half a second of audio."""

    def check(outcome: Outcome) -> None:
        written = [outcome.workdir / name for name in names if (outcome.workdir / name).is_file()]
        assert written, (names, outcome.report())
        data = written[0].read_bytes()
        try:
            samples, rate = decode(data)
        except Exception as error:  # an error JSON written where the audio should be
            raise AssertionError(f"{written[0].name} is not audio: {data[:300]!r}") from error
        assert len(samples) / rate > 0.5, (written[0].name, len(samples), rate)

    return check


def zip_file(name: str, members: set[str]) -> Check:
    def check(outcome: Outcome) -> None:
        with zipfile.ZipFile(outcome.workdir / name) as archive:
            assert set(archive.namelist()) == members, archive.namelist()
            for member in members:
                samples, rate = decode(archive.read(member))
                assert len(samples) / rate > 0.3, member

    return check


def json_out(*keys: str) -> Check:
    """The example printed JSON with these keys."""

    def check(outcome: Outcome) -> None:
        try:
            body = outcome.json()
        except json.JSONDecodeError as error:
            raise AssertionError(outcome.report()) from error
        assert set(keys) <= set(body), (keys, body)

    return check


def heard(field: str = "text") -> Check:
    """The printed JSON's `field` has the recording's words in it."""

    def check(outcome: Outcome) -> None:
        text = outcome.json()[field].lower()
        assert "library" in text and "sundays" in text, text

    return check


def printed(needle: str) -> Check:
    def check(outcome: Outcome) -> None:
        assert needle in outcome.stdout, outcome.report()

    return check


CHECKS: dict[str, list[Check]] = {
    "POST /v1/tts/": [audio_file("speech.mp3")],
    "POST /v1/tts/batch/": [json_out("task_id", "status", "status_url")],
    "POST /v1/tts/clone/": [audio_file("cloned.mp3")],
    "POST /v1/stt/": [json_out("text", "language", "duration", "segments"), heard()],
    "POST /v1/audio/enhance/": [audio_file("enhanced.wav")],
    "POST /v1/audio/dereverb/": [audio_file("dereverbed.wav")],
    "POST /v1/audio/separate/": [zip_file("stems.zip", {"vocals.wav", "accompaniment.wav"})],
    "POST /v1/audio/analyze/": [json_out("key", "scale", "bpm", "time_signature", "camelot", "compatible_keys")],
    "POST /v1/audio/convert/": [audio_file("converted.mp3", "converted.flac", "converted.ogg")],
    "POST /v1/voice-convert/": [audio_file("converted.wav")],
    "POST /v1/speech-to-speech/": [audio_file("restyled.wav")],
    "POST /v1/voice-chat/": [json_out("conversation_id", "user_text", "ai_text", "audio_url", "credits_used")],
    "POST /v1/speech-translate/": [
        json_out("original_text", "translated_text", "source_language", "target_language", "audio_url"),
        heard("original_text"),
    ],
    "POST /v1/audio/speech": [audio_file("speech.mp3")],
    "POST /v1/audio/transcriptions": [json_out("text"), heard()],
    "POST /v1/audio/translations": [json_out("text"), heard()],
    "GET /v1/models/": [json_out("models")],
    "GET /v1/voices/": [json_out("voices")],
    "GET /v1/voices/preview/{voice_id}.mp3": [audio_file("preview.mp3")],
    "GET /v1/tasks/{task_id}": [json_out("task_id", "status", "result_url")],
    "GET /v1/results/{result_id}": [zip_file("result.zip", {"001.mp3"})],
    "GET /healthz": [json_out("status")],
    "GET /readyz": [json_out("ready", "capabilities")],
    "WebSocket /v1/voice-chat/live": [audio_file("reply.wav"), printed("heard:")],
}


# ---------------------------------------------------------------- the section covers the app


def served_endpoints() -> dict[str, tuple[str, ...]]:
    """Every endpoint of the app's OpenAPI document, with the languages it needs examples in."""
    document = create_app(GatewaySettings()).openapi()
    endpoints: dict[str, tuple[str, ...]] = {
        f"{method.upper()} {path}": LANGUAGES for path, item in document["paths"].items() for method in item
    }
    endpoints.update({f"WebSocket {path}": WEBSOCKET_LANGUAGES for path in document.get("x-websockets", {})})
    return endpoints


def test_every_endpoint_has_an_example_in_each_language() -> None:
    endpoints = served_endpoints()
    have = {(example.endpoint, example.language) for example in EXAMPLES}
    missing = [
        f"{lang} {endpoint}" for endpoint, langs in endpoints.items() for lang in langs if (endpoint, lang) not in have
    ]
    assert not missing, f"docs/api.md lacks examples: {missing}"
    assert {example.endpoint for example in EXAMPLES} == set(endpoints), "examples of endpoints the app does not serve"
    names = [example.name for example in EXAMPLES]
    assert len(names) == len(set(names)), "one example per endpoint and language"
    assert set(CHECKS) == set(endpoints), "each endpoint's examples need a check here"


# ---------------------------------------------------------------- running them


@dataclass(frozen=True)
class Live:
    gateway: Gateway
    key: str
    task_id: str


async def _worker(gateway: Gateway, tts_port: int) -> asyncio.subprocess.Process:
    """`python -m gateway.worker` on the gateway's database and queue: it runs the batches."""
    env = {
        **os.environ,
        "SPEECHMESH_GATEWAY_DATABASE_PATH": str(gateway.database),
        "SPEECHMESH_GATEWAY_TTS_ADDRESS": f"127.0.0.1:{tts_port}",
        "SPEECHMESH_GATEWAY_LOG_JSON": "false",
        "SPEECHMESH_GATEWAY_WORKER_METRICS_PORT": "0",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.worker", cwd=ROOT, env=env, stderr=asyncio.subprocess.DEVNULL
    )


async def _finished_batch(gateway: Gateway, key: str) -> str:
    async with gateway.client(key) as http:
        accepted = await http.post("/v1/tts/batch/", json={"texts": ["A finished batch."], "format": "mp3"})
        assert accepted.status_code == 202, accepted.text
        task_id: str = accepted.json()["task_id"]
        async with asyncio.timeout(120):
            while (task := (await http.get(f"/v1/tasks/{task_id}")).json())["status"] != "success":
                assert task["status"] != "failed", task
                await asyncio.sleep(0.2)
    return task_id


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, speak: Callable[[str], Pcm]) -> Path:
    """speech.wav (Piper, about 6 s, 16-bit mono) and song.wav (10 s in C major at 120 BPM)."""
    from tests.test_audio_analyze import RATE, song

    folder = tmp_path_factory.mktemp("example-inputs")
    (folder / "speech.wav").write_bytes(encode_audio(speak(SPEECH), FORMATS["wav"]))
    (folder / "song.wav").write_bytes(encode_audio(Pcm(song("C", "Major", 120, 4, "one", 10.0), RATE), FORMATS["wav"]))
    return folder


async def run(example: Example, workdir: Path, env: dict[str, str]) -> Outcome:
    workdir.mkdir()
    for source in env["EXAMPLE_INPUTS"].split(os.pathsep):
        (workdir / Path(source).name).symlink_to(source)
    if example.language == "sh":
        argv = ["bash", "-euo", "pipefail", "-c", example.code]
    elif example.language == "python":
        (workdir / "example.py").write_text(example.code)
        argv = [sys.executable, "example.py"]
    else:
        (workdir / "example.mjs").write_text(example.code)
        # Node 20's WebSocket is behind this flag (Node 22 has it on).
        argv = ["node", "--experimental-websocket", "--no-warnings", "example.mjs"]
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=workdir, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=EXAMPLE_SECONDS)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        err += f"\n(killed after {EXAMPLE_SECONDS} s)".encode()
    return Outcome(example, workdir, process.returncode or 0, out.decode(), err.decode(), time.monotonic() - started)


@pytest_asyncio.fixture(scope="module")
async def outcomes(
    gateway: Gateway, tts_port: int, inputs: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Outcome]]:
    """Every example, run once, PARALLEL at a time."""
    key = await gateway.key("internal")
    worker = await _worker(gateway, tts_port)
    try:
        task_id = await _finished_batch(gateway, key)
        env = {
            **os.environ,
            "SPEECHMESH_URL": gateway.base_url,
            "SPEECHMESH_API_KEY": key,
            "TASK_ID": task_id,
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONWARNINGS": "ignore",
            "EXAMPLE_INPUTS": os.pathsep.join(str(path) for path in sorted(inputs.iterdir())),
        }
        root = tmp_path_factory.mktemp("examples")
        slots = asyncio.Semaphore(PARALLEL)

        async def limited(index: int, example: Example) -> Outcome:
            async with slots:
                slug = re.sub(r"[^a-z0-9]+", "-", example.name.lower()).strip("-")
                return await run(example, root / f"{index:02d}-{slug}", env)

        # The slowest first (the chat and the services' model work), so they overlap the rest.
        order = sorted(enumerate(EXAMPLES), key=lambda item: "chat" not in item[1].endpoint)
        done = await asyncio.gather(*(limited(index, example) for index, example in order))
        slowest = sorted(done, key=lambda outcome: -outcome.seconds)[:5]
        print("slowest examples:", ", ".join(f"{o.example.name} {o.seconds:.1f} s" for o in slowest))
        yield {outcome.example.name: outcome for outcome in done}
    finally:
        worker.kill()
        await worker.wait()


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
async def test_example_runs(example: Example, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[example.name]
    assert outcome.returncode == 0, outcome.report()
    for check in CHECKS[example.endpoint]:
        check(outcome)
