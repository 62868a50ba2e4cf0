"""The seed page's own code examples, run as a migrating user would: unchanged but for the
base URL and the key (docs/reference/seed-api-reference.txt is the page as it was given).

Every cURL, Python (requests) and JavaScript (fetch) example is cut from the page's text,
run with curl, python and node against the real gateway, and what comes back is checked:
real audio (decoded and transcribed back) or the documented JSON. The page's voice
`af_bella` is an alias here (services/tts/aliases.py). The clone examples name
`chatterbox` and the voice-convert example `openvoice`, whose weights cannot be had: their
documented 404 says so. The enhance example's output is speech, heard back.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import FORMATS
from tests.conftest import decode, transcribe, word_error_rate

pytestmark = pytest.mark.slow

SEED = Path(__file__).parent.parent / "docs" / "reference" / "seed-api-reference.txt"
HOSTED_BASE = "https://api.tts.ai"
HOSTED_KEYS = ("sk-tts-your-key", "sk-tts-your-api-key-here")
RECORDING = "The library opens at nine and closes early on Sundays."
LABELS = {"cURL": "curl", "Python - requests": "python", "JavaScript - fetch": "javascript"}


@dataclass(frozen=True)
class Example:
    language: str
    code: str

    @property
    def name(self) -> str:
        first = next(line for line in self.code.splitlines() if "/v1/" in line)
        return f"{self.language}:{re.search(r'/v1/[a-z/-]+', first).group()}"  # type: ignore[union-attr]


async def parses(language: str, code: str) -> bool:
    if language == "python":
        try:
            ast.parse(code)
        except SyntaxError:
            return False
        return True
    if language == "javascript":
        check = await asyncio.create_subprocess_exec(
            "node", "--input-type=module", "--check", stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        await check.communicate(code.encode())
        return check.returncode == 0
    return True


async def seed_examples() -> list[Example]:
    """Each example: the paragraphs after its label, as many as still parse as its language
    (the page's prose does not), one paragraph for cURL."""
    lines = SEED.read_text().splitlines()
    examples = []
    for index, line in enumerate(lines):
        language = LABELS.get(line.strip())
        if language is None:
            continue
        paragraphs = "\n".join(lines[index + 1 :]).split("\n\n")
        code = paragraphs[0]
        if language != "curl":
            for paragraph in paragraphs[1:]:
                if not await parses(language, f"{code}\n\n{paragraph}"):
                    break
                code = f"{code}\n\n{paragraph}"
        examples.append(Example(language, code))
    return examples


def localized(code: str, base_url: str, key: str) -> str:
    """The only two changes a migrating user makes: the base URL and the key."""
    for hosted_key in HOSTED_KEYS:
        code = code.replace(hosted_key, key)
    return code.replace(HOSTED_BASE, base_url)


# What a browser has that node lacks, for the JavaScript examples: an <audio> that records
# what it was given to play, and the file a user picked.
NODE_PRELUDE = """
import { readFileSync, writeFileSync } from 'node:fs';
import { resolveObjectURL } from 'node:buffer';
globalThis.Audio = class {
  constructor(url) { this.url = url; }
  async play() {
    const blob = resolveObjectURL(this.url);
    writeFileSync('played.audio', Buffer.from(await blob.arrayBuffer()));
  }
};
const audioFile = new File([readFileSync('recording.mp3')], 'recording.mp3', { type: 'audio/mpeg' });
"""


async def run(argv: list[str], cwd: Path, stdin: str | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode() if stdin else None), timeout=240)
    assert process.returncode == 0, f"{argv[0]} failed: {err.decode()[-2000:]}"
    return out.decode()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, speak, reference: bytes) -> Path:
    """The files the examples open: a recording, a reference voice, noisy and source audio."""
    folder = tmp_path_factory.mktemp("seed-examples")
    recording = encode_audio(speak(RECORDING), FORMATS["mp3"])
    for name in ("recording.mp3", "noisy_audio.mp3", "source_audio.mp3"):
        (folder / name).write_bytes(recording)
    (folder / "reference.wav").write_bytes(reference)
    return folder


def assert_speech(data: bytes, whisper, text: str) -> None:
    samples, rate = decode(data)
    assert len(samples) / rate > 0.5
    assert word_error_rate(text, transcribe(whisper, data)) <= 0.35, transcribe(whisper, data)


def assert_json_error(data: bytes, code: str, needle: str) -> None:
    error = json.loads(data)["error"]
    assert error["code"] == code and needle in error["message"], error


def assert_transcript(body: dict, words: bool) -> None:
    assert word_error_rate(RECORDING, body["text"]) <= 0.2, body["text"]
    assert body["language"] == "en" and body["segments"]
    assert ("words" in body) == words


async def test_the_page_has_the_examples_it_shows() -> None:
    names = [example.name for example in await seed_examples()]
    assert names == [
        "curl:/v1/tts/",
        "curl:/v1/voice-convert/",
        "python:/v1/tts/",
        "python:/v1/stt/",
        "python:/v1/tts/clone/",
        "javascript:/v1/tts/",
        "javascript:/v1/stt/",
        "curl:/v1/tts/",
        "curl:/v1/stt/",
        "curl:/v1/tts/clone/",
        "curl:/v1/audio/enhance/",
    ]


async def test_curl_examples(gateway, workdir: Path, whisper) -> None:
    key = await gateway.key()
    for example in [e for e in await seed_examples() if e.language == "curl"]:
        out = await run(["bash", "-euo", "pipefail", "-c", localized(example.code, gateway.base_url, key)], workdir)
        if example.name == "curl:/v1/tts/":
            # Both TTS examples write output.mp3: Kokoro speaking with af_bella's stand-in.
            text = re.search(r'"text": ?"([^"]+)"', example.code).group(1)  # type: ignore[union-attr]
            assert_speech((workdir / "output.mp3").read_bytes(), whisper, text)
        elif example.name == "curl:/v1/stt/":
            assert_transcript(json.loads(out), words=True)
        elif example.name == "curl:/v1/tts/clone/":
            assert_json_error((workdir / "cloned.mp3").read_bytes(), "not_found", "chatterbox")
        elif example.name == "curl:/v1/voice-convert/":
            assert_json_error((workdir / "converted.wav").read_bytes(), "not_found", "openvoice")
        else:
            assert_speech((workdir / "enhanced.mp3").read_bytes(), whisper, RECORDING)


async def test_python_examples(gateway, workdir: Path, whisper) -> None:
    # The page's Python examples continue one script (the later ones use its API_KEY).
    examples = [e.code for e in await seed_examples() if e.language == "python"]
    script = localized("\n\n".join(examples), gateway.base_url, await gateway.key())
    out = await run([sys.executable, "-"], workdir, stdin=script)
    assert_speech((workdir / "output.mp3").read_bytes(), whisper, "Hello from TTS.ai!")
    assert word_error_rate(RECORDING, out.splitlines()[1]) <= 0.2, out
    assert_json_error((workdir / "cloned_output.mp3").read_bytes(), "not_found", "chatterbox")


async def test_javascript_examples(gateway, workdir: Path, whisper) -> None:
    key = await gateway.key()
    tts, stt = [e.code for e in await seed_examples() if e.language == "javascript"]
    await run(["node", "--input-type=module"], workdir, stdin=NODE_PRELUDE + localized(tts, gateway.base_url, key))
    assert_speech((workdir / "played.audio").read_bytes(), whisper, "Hello from TTS.ai!")
    # The second example uses the first one's API_KEY.
    script = localized(f"const API_KEY = 'sk-tts-your-key';\n{stt}", gateway.base_url, key)
    out = await run(["node", "--input-type=module"], workdir, stdin=NODE_PRELUDE + script)
    assert word_error_rate(RECORDING, out) <= 0.2, out
