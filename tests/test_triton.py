"""The Triton runtime: a real tritonserver with deploy/triton/models, the TTS and STT services
pointed at it (runtime = triton), and the gateway in front, compared with the in-process
runtime on the same requests: the same speech sample for sample (Piper without noise), the
same words, word times and speakers. And the runtime's failures as the services' typed errors.
"""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from services.stt.registry import build_engines as build_stt_engines
from services.stt.server import create_server as create_stt_server
from services.stt.settings import SttSettings
from services.tts.registry import build_engines as build_tts_engines
from services.tts.server import create_server as create_tts_server
from services.tts.settings import TtsSettings
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.cancel import bound
from speechmesh.common.errors import Cancelled, InvalidArgument, ModelLoading, ModelUnavailable, UpstreamUnavailable
from speechmesh.common.settings import TritonSettings
from speechmesh.triton import wire
from speechmesh.triton.remote import TritonModel
from tests.conftest import TEST_PIPER, Gateway, decode, running_gateway, serving, word_error_rate, words
from tests.servers import free_port, triton_server

pytestmark = pytest.mark.slow

MODELS_DIR = Path("var/models").resolve()
TEXT = (
    "Triton serves this sentence from its own process. The second sentence arrives as its own piece, "
    "and the third one closes the stream."
)


@pytest_asyncio.fixture(scope="module")
async def triton_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """Triton with Piper (the tests' noiseless voice), Whisper base and the CAM++ embedder."""
    env = {
        "SPEECHMESH_TTS_PIPER__NOISE_SCALE": str(TEST_PIPER.noise_scale),
        "SPEECHMESH_TTS_PIPER__NOISE_W_SCALE": str(TEST_PIPER.noise_w_scale),
        "SPEECHMESH_STT_MODELS_DIR": str(MODELS_DIR),
        # As under make run-triton, Triton's environment tells the services to use Triton; the
        # engines inside it must still run in-process (or each would wait for itself).
        "SPEECHMESH_TTS_RUNTIME": '{"piper": "triton"}',
        "SPEECHMESH_STT_RUNTIME": '{"whisper": "triton", "campplus": "triton"}',
    }
    async with triton_server(tmp_path_factory.mktemp("triton"), ["piper", "whisper", "campplus"], env) as url:
        yield url


@pytest_asyncio.fixture(scope="module")
async def on_triton(triton_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    """The gateway over a TTS and an STT service whose models all run on Triton."""
    triton = TritonSettings(url=triton_url, ready_timeout_seconds=60)
    tts = TtsSettings(
        port=0, workers=2, log_json=False, engines=["piper"], cloners=[], runtime={"piper": "triton"}, triton=triton
    )
    stt = SttSettings(
        port=0,
        workers=2,
        log_json=False,
        engines=["whisper"],
        models_dir=MODELS_DIR,
        runtime={"whisper": "triton", "campplus": "triton"},
        triton=triton,
    )
    database = tmp_path_factory.mktemp("triton-gateway") / "speechmesh.db"
    async with (
        serving(create_tts_server(tts, build_tts_engines(tts))) as tts_port,
        serving(create_stt_server(stt, build_stt_engines(stt))) as stt_port,
        running_gateway(f"127.0.0.1:{tts_port}", database, f"127.0.0.1:{stt_port}") as gateway,
    ):
        yield gateway


@pytest_asyncio.fixture(scope="module")
async def in_process(tts_port: int, stt_port: int, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    """The gateway over the session's in-process TTS and STT services."""
    database = tmp_path_factory.mktemp("inproc-gateway") / "speechmesh.db"
    async with running_gateway(f"127.0.0.1:{tts_port}", database, f"127.0.0.1:{stt_port}") as gateway:
        yield gateway


async def _stream(gateway: Gateway) -> tuple[list[bytes], np.ndarray]:
    async with gateway.client(await gateway.key()) as http:
        body = {"text": TEXT, "stream": True, "format": "wav", "model": "piper"}
        async with http.stream("POST", "/v1/tts/", json=body) as reply:
            assert reply.status_code == 200, await reply.aread()
            assert reply.headers["x-model"] == "piper"
            parts = [part async for part in reply.aiter_raw()]
    return parts, decode(b"".join(parts))[0]


async def test_streaming_speech_from_triton_is_the_in_process_speech(on_triton, in_process) -> None:
    parts, triton_audio = await _stream(on_triton)
    _, local_audio = await _stream(in_process)
    assert len(parts) >= 3  # sent piece by piece, not as one file
    assert len(triton_audio) == len(local_audio) > 22050 * 4
    assert np.abs(triton_audio - local_audio).max() < 1e-3


async def _transcribe(gateway: Gateway, audio: bytes) -> dict:
    async with gateway.client(await gateway.key()) as http:
        files = {"file": ("dialog.flac", audio)}
        fields = {"model": "whisper", "timestamps": "true", "diarize": "true"}
        reply = await http.post("/v1/stt/", files=files, data=fields)
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_words_times_and_speakers_from_triton_match_in_process(on_triton, in_process, dialog) -> None:
    """The same engine both ways; its shared decoder batches a call's chunks as they are
    encoded, so the batches (and a comma or a full stop) can differ between two runs of the
    same call, in-process too: words, times and speakers are compared, not the text."""
    audio = encode_audio(Pcm(dialog.audio, 16000), FORMATS["flac"])
    triton_body = await _transcribe(on_triton, audio)
    local_body = await _transcribe(in_process, audio)
    assert word_error_rate(local_body["text"], triton_body["text"]) <= 0.03
    ours = [(words(w["word"]), w) for w in triton_body["words"]]
    theirs = [(words(w["word"]), w) for w in local_body["words"]]
    matcher = difflib.SequenceMatcher(a=[str(k) for k, _ in ours], b=[str(k) for k, _ in theirs], autojunk=False)
    same = [(ours[a + i][1], theirs[b + i][1]) for a, b, n in matcher.get_matching_blocks() for i in range(n)]
    assert len(same) >= 0.95 * len(theirs) >= 60
    for mine, local in same:
        assert mine["speaker"] == local["speaker"], (mine, local)
        assert abs(mine["start"] - local["start"]) < 0.1 and abs(mine["end"] - local["end"]) < 0.1, (mine, local)
    assert len({word["speaker"] for word in triton_body["words"]}) == 3


async def test_catalog_lists_the_models_triton_serves(on_triton) -> None:
    async with on_triton.client(await on_triton.key()) as http:
        models = {model["id"]: model for model in (await http.get("/v1/models/")).json()["models"]}
        voices = (await http.get("/v1/voices/", params={"model": "piper"})).json()["voices"]
    assert models["piper"]["status"] == "ready" and models["whisper"]["status"] == "ready"
    assert models["kokoro"]["status"] == "unavailable"  # not enabled here, as in-process
    assert "en_US-joe-medium" in {voice["id"] for voice in voices}


def test_a_model_triton_has_not_loaded_is_loading(triton_url: str) -> None:
    with pytest.raises(ModelLoading):
        TritonModel("kokoro", triton_url, 5).call({wire.REQUEST: wire.pack({})})


def test_a_typed_error_inside_triton_arrives_typed(triton_url: str) -> None:
    with pytest.raises(InvalidArgument, match="Unknown method"):
        list(TritonModel("piper", triton_url, 5).stream({wire.REQUEST: wire.pack({"method": "sing"})}))


def test_an_unreachable_triton_is_unavailable() -> None:
    dead = f"127.0.0.1:{free_port()}"
    with pytest.raises(UpstreamUnavailable):
        TritonModel("piper", dead, 5).call({wire.REQUEST: wire.pack({})})
    started = time.monotonic()
    with pytest.raises(ModelUnavailable):
        TritonModel("piper", dead, 1).wait_ready()
    assert time.monotonic() - started < 5


def test_a_caller_who_leaves_cancels_the_triton_stream(triton_url: str) -> None:
    """The engine's cancellation token stops a stream that is waiting for Triton."""
    token = threading.Event()
    remote = TritonModel("piper", triton_url, 5)
    request = {"method": "synthesize", "text": TEXT * 4, "voice": "en_US-joe-medium", "language": "en", "speed": 1.0}
    pieces = 0

    def listen() -> None:
        nonlocal pieces
        for _ in remote.stream({wire.REQUEST: wire.pack(request)}):
            pieces += 1
            token.set()  # the caller leaves after the first piece

    with pytest.raises(Cancelled):
        bound(token, listen)
    assert pieces == 1
