"""The audio separator and the chat language model on the Triton runtime: a real tritonserver
with deploy/triton/models' repet-hpss and smollm2-135m, compared with the in-process engines
on the same input. The stems are the in-process stems bit for bit, through the adapter and
through the audio service's Separate; the reply is the in-process reply piece for piece (the
engine samples with a fixed seed), and a reply stopped by `on_delta` stops early and leaves
the model ready for the next.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest
import pytest_asyncio

from services.audio.engines.repet import DspSeparator
from services.audio.engines.triton import TritonSeparator
from services.audio.processors import Separator
from services.audio.registry import build_engines as build_audio_engines
from services.audio.server import create_server as create_audio_server
from services.audio.settings import AudioSettings
from services.chat.engines.triton import TritonLanguageModel
from services.chat.processors import LanguageModel, Message, Written
from services.chat.registry import build_engines as build_chat_engines
from services.chat.settings import ChatSettings
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.settings import TritonSettings
from speechmesh.v1 import audio_pb2, audio_pb2_grpc
from tests.conftest import serving
from tests.servers import triton_server

# The 8 s loop with a voice over it that the separator's own tests measure the stems on.
from tests.test_audio_separate import RATE, song  # noqa: F401

pytestmark = pytest.mark.slow

SEPARATOR = "repet-hpss"
LLM = "smollm2-135m"
CONVERSATION = [
    Message("system", "You are a brief assistant."),
    Message("user", "Tell me about the moon."),
]
REPLY_TOKENS = 48


@pytest_asyncio.fixture(scope="module")
async def triton(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TritonSettings]:
    env = {
        "SPEECHMESH_CHAT_THREADS": "1",
        # As under make run-triton, Triton's environment tells the services to use Triton; the
        # engines inside it must still run in-process (or each would wait for itself).
        "SPEECHMESH_AUDIO_RUNTIME": f'{{"{SEPARATOR}": "triton"}}',
        "SPEECHMESH_CHAT_RUNTIME": f'{{"{LLM}": "triton"}}',
    }
    async with triton_server(tmp_path_factory.mktemp("triton"), [SEPARATOR, LLM], env) as url:
        yield TritonSettings(url=url, ready_timeout_seconds=30)


# ---------------------------------------------------------------- the separator


def _separator(settings: AudioSettings) -> Separator:
    separators = build_audio_engines(settings).separators
    separators.load()
    return separators.get(SEPARATOR)[1]


@pytest.fixture(scope="module")
def on_triton(triton: TritonSettings) -> Separator:
    return _separator(AudioSettings(engines=[SEPARATOR], runtime={SEPARATOR: "triton"}, triton=triton))


@pytest.fixture(scope="module")
def in_process() -> Separator:
    return _separator(AudioSettings(engines=[SEPARATOR]))


def test_stems_from_triton_are_the_in_process_stems(on_triton, in_process, song) -> None:  # noqa: F811
    assert isinstance(on_triton, TritonSeparator) and isinstance(in_process, DspSeparator)
    assert (on_triton.sample_rate, on_triton.stem_counts) == (RATE, (2, 4))
    mix = song["mix"]
    for audio, stems in ((mix, 4), (mix[: 3 * RATE].mean(axis=1), 2)):
        ours, theirs = on_triton.separate(audio, stems), in_process.separate(audio, stems)
        assert list(ours) == list(theirs)
        for name, stem in ours.items():
            assert stem.shape == audio.shape and stem.dtype == np.float32
            np.testing.assert_array_equal(stem, theirs[name])


async def _separate(port: int, upload: bytes) -> dict[str, bytes]:
    """Each stem's file from the audio service's Separate (4 stems, the default WAV)."""

    async def requests() -> AsyncIterator[audio_pb2.SeparateRequest]:
        yield audio_pb2.SeparateRequest(config=audio_pb2.SeparateConfig(model=SEPARATOR, stems=4))
        yield audio_pb2.SeparateRequest(audio_content=upload)

    files: dict[str, bytes] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        async for response in audio_pb2_grpc.AudioStub(channel).Separate(requests()):
            if response.audio.HasField("audio_content"):
                files[response.stem] = files.get(response.stem, b"") + response.audio.audio_content
            else:
                assert response.audio.report.model == SEPARATOR
    return files


async def test_the_audio_service_on_triton_separates_as_in_process(triton, song) -> None:  # noqa: F811
    upload = encode_audio(Pcm(song["mix"], RATE), FORMATS["flac"], channels=2)
    common = {"port": 0, "workers": 2, "log_json": False, "engines": [SEPARATOR]}
    on_triton = AudioSettings(**common, runtime={SEPARATOR: "triton"}, triton=triton)
    in_process = AudioSettings(**common)
    async with (
        serving(create_audio_server(on_triton, build_audio_engines(on_triton))) as triton_port,
        serving(create_audio_server(in_process, build_audio_engines(in_process))) as local_port,
    ):
        ours, theirs = await _separate(triton_port, upload), await _separate(local_port, upload)
    assert list(ours) == ["vocals", "drums", "bass", "other"]
    assert ours == theirs


# ---------------------------------------------------------------- the language model


def _language_model(settings: ChatSettings) -> LanguageModel:
    models = build_chat_engines(settings).language_models
    models.load()
    return models.get(LLM)[1]


@pytest.fixture(scope="module")
def writer_on_triton(triton: TritonSettings) -> LanguageModel:
    return _language_model(ChatSettings(engines=[LLM], runtime={LLM: "triton"}, triton=triton))


@pytest.fixture(scope="module")
def writer_in_process() -> LanguageModel:
    return _language_model(ChatSettings(engines=[LLM], threads=1))


def _write(model: LanguageModel, stop_after: int = 0) -> tuple[list[str], Written]:
    pieces: list[str] = []

    def on_delta(piece: str) -> bool:
        pieces.append(piece)
        return len(pieces) == stop_after

    return pieces, model.reply(CONVERSATION, REPLY_TOKENS, on_delta)


def test_the_reply_from_triton_is_the_in_process_reply(writer_on_triton, writer_in_process) -> None:
    assert isinstance(writer_on_triton, TritonLanguageModel)
    assert writer_on_triton.context_tokens == writer_in_process.context_tokens == 2048
    assert writer_on_triton.languages == writer_in_process.languages == frozenset({"en"})
    assert writer_on_triton.count_tokens("How far is it?") == writer_in_process.count_tokens("How far is it?")
    ours, written = _write(writer_on_triton)
    theirs, expected = _write(writer_in_process)
    assert len(ours) > 10 and ours == theirs
    assert written == expected


def test_a_reply_stops_when_on_delta_says_so(writer_on_triton) -> None:
    full, written = _write(writer_on_triton)
    pieces, stopped = _write(writer_on_triton, stop_after=3)
    assert pieces == full[:3]
    assert stopped == Written("".join(full[:3]), finished=False)
    # The model is free again: the next reply is the whole one.
    assert _write(writer_on_triton) == (full, written)
