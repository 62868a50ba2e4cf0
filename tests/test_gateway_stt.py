"""POST /v1/stt/ over real HTTP: every documented container, the documented response
shape, word timestamps, diarization switch, and each refusal with its error JSON."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest

from speechmesh.common import limits
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.audio.pcm import Pcm
from tests.conftest import SEED_CONTAINERS as CONTAINERS
from tests.conftest import TURNS, word_error_rate

pytestmark = pytest.mark.slow

SENTENCE = "The museum opens at nine and closes early on Sundays."


@pytest.fixture(scope="module")
def sentence(speak) -> Pcm:
    return speak(SENTENCE)


def encoded(pcm: Pcm, name: str) -> bytes:
    fmt = CONTAINERS[name]
    return encode_audio(pcm, fmt, channels=fmt.fixed_channels or 1)


async def post(client: httpx.AsyncClient, data: bytes | None, filename: str = "audio.wav", **fields) -> httpx.Response:
    files = {"file": (filename, data)} if data is not None else None
    return await client.post("/v1/stt/", files=files, data={k: str(v) for k, v in fields.items()} or None)


def assert_error(response: httpx.Response, status: int, code: str, needle: str = "") -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and needle in error["message"]
    return error


@pytest.mark.parametrize("name", list(CONTAINERS))
async def test_every_documented_container_is_transcribed(client, sentence, name):
    response = await post(client, encoded(sentence, name), filename=f"speech.{name}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert word_error_rate(SENTENCE, body["text"]) <= 0.25, body["text"]
    assert abs(body["duration"] - sentence.duration_seconds) < 0.15


async def test_response_has_the_documented_shape(client, sentence):
    response = await post(client, encoded(sentence, "mp3"), filename="recording.mp3", model="whisper")
    body = response.json()
    assert set(body) == {"text", "language", "duration", "segments"}
    assert body["language"] == "en" and response.headers["x-model"] == "whisper"
    for segment in body["segments"]:
        assert set(segment) == {"start", "end", "text", "speaker", "language"}
        assert segment["speaker"] is None and 0 <= segment["start"] <= segment["end"] <= body["duration"]


async def test_seed_example_faster_whisper_with_timestamps(client, sentence):
    response = await post(client, encoded(sentence, "mp3"), model="faster-whisper", timestamps="true")
    body = response.json()
    assert response.headers["x-model"] == "faster-whisper"
    words = body["words"]
    assert word_error_rate(SENTENCE, " ".join(word["word"] for word in words)) <= 0.25
    assert all(set(word) == {"word", "start", "end", "probability", "speaker"} for word in words)
    starts = [word["start"] for word in words]
    assert starts == sorted(starts) and words[-1]["end"] <= body["duration"] + 0.02


async def test_diarize_labels_every_segment_and_word(client, sentence):
    response = await post(client, encoded(sentence, "wav"), diarize="true", timestamps="true")
    body = response.json()
    assert {segment["speaker"] for segment in body["segments"]} == {"SPEAKER_00"}
    assert {word["speaker"] for word in body["words"]} == {"SPEAKER_00"}


async def test_silence_gives_empty_text(client):
    quiet = Pcm(np.zeros(16000 * 2, dtype=np.float32), 16000)
    response = await post(client, encode_audio(quiet, FORMATS["wav"]))
    assert response.status_code == 200
    assert response.json() == {"text": "", "language": response.json()["language"], "duration": 2.0, "segments": []}


@pytest.mark.parametrize(
    ("data", "fields", "status", "code", "needle"),
    [
        (None, {"model": "whisper"}, 400, "bad_request", "'file' is required"),
        (b"", {}, 400, "bad_request", "empty"),
        (b"%PDF-1.4 this is a document, not audio" * 20, {}, 400, "bad_request", "not audio"),
        (b"", {"model": "whisper-9"}, 400, "bad_request", "empty"),
        (b"AUDIO", {"timestamps": "maybe"}, 400, "bad_request", "'timestamps' must be true or false"),
    ],
)
async def test_bad_uploads_are_refused(client, data, fields, status, code, needle):
    assert_error(await post(client, data, **fields), status, code, needle)


async def test_truncated_file_is_refused(client, sentence):
    data = encoded(sentence, "mp3")
    assert_error(await post(client, data[: len(data) // 2], filename="cut.mp3"), 400, "bad_request", "truncated")


async def test_unknown_and_unavailable_models(client, sentence):
    data = encoded(sentence, "wav")
    error = assert_error(await post(client, data, model="whisper-9"), 404, "not_found", "whisper-9")
    assert error["model"] == "whisper-9"
    assert_error(await post(client, data, model="sensevoice"), 404, "not_found", "not available")


async def test_not_multipart_is_refused(client):
    response = await client.post("/v1/stt/", json={"file": "recording.mp3"})
    assert_error(response, 400, "bad_request", "'file' is required: send it as a file in a multipart/form-data")


async def test_auth_comes_before_the_upload(gateway, sentence):
    async with gateway.client() as anonymous:
        assert_error(await post(anonymous, encoded(sentence, "wav")), 401, "unauthorized")
    async with gateway.client(await gateway.key("free")) as free:
        assert_error(await post(free, encoded(sentence, "wav")), 403, "forbidden")


async def multipart_body(size: int, boundary: str) -> AsyncIterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    block = bytes(limits.CHUNK_BYTES)
    for _ in range(size // len(block)):
        yield block
    yield f"\r\n--{boundary}--\r\n".encode()


async def test_over_100_mb_is_refused_while_streaming(client):
    boundary = "speechmeshboundary"
    # Chunked, so no Content-Length warns the gateway: it must count as the bytes arrive.
    response = await client.post(
        "/v1/stt/",
        content=multipart_body(limits.STT_UPLOAD_MAX_BYTES + limits.CHUNK_BYTES, boundary),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    error = assert_error(response, 413, "file_too_large", "100 MB")
    assert error["param"] == "file"


async def test_declared_length_over_the_limit_is_refused_before_reading(gateway):
    # A raw socket: HTTP clients will not send a Content-Length they do not then honour.
    host, port = gateway.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        (
            "POST /v1/stt/ HTTP/1.1\r\nHost: test\r\n"
            f"Authorization: Bearer {await gateway.key()}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {500 * 1024 * 1024}\r\n\r\n--b\r\n"
        ).encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    writer.close()
    assert head.startswith(b"HTTP/1.1 413 ")


async def test_models_lists_stt_models_with_their_state(client):
    models = {model["id"]: model for model in (await client.get("/v1/models/")).json()["models"]}
    assert models["whisper"]["type"] == "stt" and models["whisper"]["status"] == "ready"
    assert len(models["whisper"]["languages"]) >= 99
    assert models["faster-whisper"]["status"] == "ready" and models["faster-whisper"]["languages"] == ["en"]
    for unavailable in ("sensevoice", "whisper-small", "whisper-large-v3"):
        assert models[unavailable]["status"] == "unavailable" and models[unavailable]["unavailable_reason"]
    reason = models["whisper-large-v3"]["unavailable_reason"]
    assert "whisper-large-v3" in reason and "var/models" not in reason  # no server paths


async def test_three_voice_dialog_gets_three_speakers_and_turn_labels(client, dialog):
    data = encode_audio(Pcm(dialog.audio, 16000), FORMATS["flac"])
    response = await post(client, data, filename="meeting.flac", diarize="true", timestamps="true")
    body = response.json()
    assert {segment["speaker"] for segment in body["segments"]} == {"SPEAKER_00", "SPEAKER_01", "SPEAKER_02"}
    order = list(dict.fromkeys(voice for voice, _ in TURNS))
    for (voice, _), (start, end) in zip(TURNS, dialog.spans, strict=True):
        said = [word["speaker"] for word in body["words"] if start <= (word["start"] + word["end"]) / 2 <= end]
        expected = f"SPEAKER_{order.index(voice):02d}"
        assert len(said) >= 8 and said.count(expected) >= len(said) - 1, (voice, said)
    for segment in body["segments"]:
        inside = [word for word in body["words"] if segment["start"] <= word["start"] < segment["end"]]
        assert {word["speaker"] for word in inside} <= {segment["speaker"]}


async def test_spanish_is_detected_and_transcribed(client, voices):
    spanish = "El tren sale de la estación a las ocho de la mañana todos los días."
    data = encode_audio(Pcm(voices("jf_alpha", spanish, lang="es"), 16000), FORMATS["mp3"])
    body = (await post(client, data, filename="tren.mp3")).json()
    assert body["language"] == "es"
    assert word_error_rate(spanish, body["text"]) <= 0.25, body["text"]
    forced = (await post(client, data, filename="tren.mp3", language="es")).json()
    assert forced["language"] == "es"
