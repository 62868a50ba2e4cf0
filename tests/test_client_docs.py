"""docs/client.md's examples, run as a reader would: each Python block as a script of its own,
against the real gateway and services, changed only in the addresses and the key; what they
write and print is checked (speech heard back, transcripts, the typed error)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.audio.resample import resample
from tests.conftest import Gateway, transcribe, word_error_rate
from tests.test_seed_examples import run

pytestmark = pytest.mark.slow

DOC = Path(__file__).parent.parent / "docs" / "client.md"
SPOKEN = "The library opens at nine and closes early on Sundays."


def examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, speak) -> Path:
    """speech.pcm, which the live recognition example reads: 16 kHz mono PCM, silence after."""
    folder = tmp_path_factory.mktemp("client-docs")
    pcm = resample(speak(SPOKEN), 16000)
    samples = np.concatenate([pcm.samples, np.zeros(16000, np.float32)])
    (folder / "speech.pcm").write_bytes(Pcm(samples, 16000).to_int16().astype("<i2").tobytes())
    return folder


async def test_every_example_runs(gateway: Gateway, tts_port: int, stt_port: int, workdir: Path, whisper) -> None:
    places = {
        "http://127.0.0.1:8000": gateway.base_url,
        "sk-tts-your-key": await gateway.key(),
        "127.0.0.1:50051": f"127.0.0.1:{tts_port}",
        "127.0.0.1:50052": f"127.0.0.1:{stt_port}",
    }
    outputs = []
    for code in examples():
        for written, local in places.items():
            code = code.replace(written, local)
        outputs.append((await run([sys.executable, "-"], workdir, stdin=code)).splitlines())
    rest_sync, rest_async, grpc_sync, grpc_live = outputs

    assert (
        word_error_rate(
            "Good morning, this is a short test.", transcribe(whisper, (workdir / "hello.wav").read_bytes())
        )
        <= 0.2
    )
    assert rest_sync[0] == "1 credit(s), 59 requests left this minute"
    assert word_error_rate("Good morning, this is a short test.", rest_sync[1]) <= 0.2, rest_sync
    assert rest_sync[3].startswith("404 not_found Voice 'no-such-voice'"), rest_sync

    streamed = transcribe(whisper, (workdir / "streamed.mp3").read_bytes())
    assert word_error_rate("The first sentence. And the second one.", streamed) <= 0.2, streamed
    assert rest_async[0].startswith("en_US-joe-medium en http")

    assert word_error_rate("Internal callers talk to the services directly.", grpc_sync[0]) <= 0.2, grpc_sync
    assert "'piper'" in grpc_sync[1]

    assert len(grpc_live) == 1 and word_error_rate(SPOKEN, grpc_live[0].split(": ", 1)[1]) <= 0.2, grpc_live
