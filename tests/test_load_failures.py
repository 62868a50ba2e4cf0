"""Load failures on real gRPC servers: whatever an engine, a component or an engine set
raises while loading is logged with all the server knows (paths included), turns only what
failed unavailable, with a reason clients may read (no server paths), and the service
still reaches SERVING with the rest."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NoReturn

import grpc
import numpy as np
import pytest
from grpc_status import rpc_status

from services.stt.engine_set import SttEngines
from services.stt.server import create_server as create_stt_server
from services.stt.settings import SttSettings
from services.tts.registry import build_engines
from services.tts.settings import TtsSettings
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import output_format
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.errors import ModelUnavailable
from speechmesh.runtime.catalog import LOAD_STOPPED
from speechmesh.runtime.server import stop_server
from speechmesh.runtime.status import error_info
from speechmesh.v1 import models_pb2, models_pb2_grpc, stt_pb2, stt_pb2_grpc, tts_pb2, tts_pb2_grpc
from tests.conftest import running_service, wait_serving
from tests.fakes import ScriptedRecognizer, ScriptedSynthesizer, scripted_registry, scripted_stt_engines

# An absolute path in a text: a slash at its start or after a space, quote or bracket.
_SERVER_PATH = re.compile(r"(?:^|[\s'\"(\[=:])/\w")
# Before these fixes the service never reached SERVING; fail in seconds, not in a minute.
_SERVING_SECONDS = 15


def assert_no_server_path(text: str) -> None:
    assert not _SERVER_PATH.search(text), text


def logged(caplog: pytest.LogCaptureFixture, error: Exception) -> bool:
    """Whether a record carries `error`: its text in the message, or the exception itself."""
    return any(
        str(error) in record.getMessage() or (record.exc_info and record.exc_info[1] is error)
        for record in caplog.records
    )


@contextlib.asynccontextmanager
async def stt_service(engines: SttEngines) -> AsyncIterator[grpc.aio.Channel]:
    server, port = await create_stt_server(SttSettings(port=0, workers=2, log_json=False), engines)
    try:
        await wait_serving(port, timeout=_SERVING_SECONDS)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await stop_server(server, grace=0)


async def recognize(channel: grpc.aio.Channel, **config) -> stt_pb2.RecognizeResponse:
    audio = encode_audio(Pcm(np.zeros(16_000, np.float32), 16_000), output_format("wav"))

    async def messages() -> AsyncIterator[stt_pb2.RecognizeRequest]:
        yield stt_pb2.RecognizeRequest(config=stt_pb2.RecognitionConfig(**config))
        yield stt_pb2.RecognizeRequest(audio_content=audio)

    return await stt_pb2_grpc.SpeechToTextStub(channel).Recognize(messages(), timeout=10)


async def synthesize(channel: grpc.aio.Channel, **fields) -> tts_pb2.SynthesizeResponse:
    """The first reply of a Synthesize call of "hi" (a refusal raises)."""
    call = tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(tts_pb2.SynthesizeRequest(text="hi", **fields))
    return await anext(aiter(call))


@pytest.mark.parametrize(
    "error",
    [
        ModelUnavailable("the d-vector embedder needs librosa"),
        RuntimeError("onnxruntime could not create a session"),
        FileNotFoundError(2, "No such file or directory", "/srv/speechmesh/models/embedder.int8.onnx"),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_a_diarizer_that_fails_to_load_fails_only_diarization(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    def diarizer() -> NoReturn:
        raise error

    caplog.set_level(logging.WARNING)
    async with stt_service(scripted_stt_engines(ScriptedRecognizer(), diarizer=diarizer)) as channel:
        assert (await recognize(channel)).text == ""
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await recognize(channel, diarize=True)
    refusal = caught.value
    info = error_info(rpc_status.from_call(refusal))
    assert refusal.code() is grpc.StatusCode.FAILED_PRECONDITION and info is not None
    assert info.reason == "MODEL_UNAVAILABLE" and "Diarization is not available" in refusal.details()
    assert_no_server_path(refusal.details())
    assert logged(caplog, error)


async def test_an_engine_set_whose_load_breaks_serves_with_its_models_unavailable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    release.set()
    engines = scripted_registry(ScriptedSynthesizer(release))
    bug = RuntimeError("a bug past the engines' own failures")

    def load() -> None:
        raise bug

    monkeypatch.setattr(engines, "load", load)
    caplog.set_level(logging.WARNING)
    async with running_service(engines) as port:
        await wait_serving(port, timeout=_SERVING_SECONDS)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            listed = await models_pb2_grpc.ModelCatalogStub(channel).ListModels(models_pb2.ListModelsRequest())
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await synthesize(channel)
    fake = next(model for model in listed.models if model.id == "fake")
    assert (fake.state, fake.unavailable_reason) == (models_pb2.UNAVAILABLE, LOAD_STOPPED)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION and LOAD_STOPPED in caught.value.details()
    assert logged(caplog, bug)


async def test_xtts_without_weights_says_why_without_the_server_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    engines = build_engines(TtsSettings(engines=["xtts"], cloners=[], default_model="xtts", models_dir=tmp_path))
    async with running_service(engines) as port:
        await wait_serving(port, timeout=_SERVING_SECONDS)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            listed = await models_pb2_grpc.ModelCatalogStub(channel).ListModels(models_pb2.ListModelsRequest())
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await synthesize(channel, model="xtts")
    xtts = next(model for model in listed.models if model.id == "xtts")
    assert xtts.state == models_pb2.UNAVAILABLE and "weights are not installed" in xtts.unavailable_reason
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    for text in [*(model.unavailable_reason for model in listed.models), caught.value.details()]:
        assert_no_server_path(text)
    assert any(str(tmp_path / "xtts-v2") in record.getMessage() for record in caplog.records)
