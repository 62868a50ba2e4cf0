"""What an attacker can send the gateway over HTTP: each answer is the documented JSON
error and a 4xx, never a 500, a hang, or work nobody asked for.

Raw sockets send what HTTP clients will not (a garbage request line, a Content-Length that
is never honoured, a body that never comes); everything runs in the test's event loop
beside the gateway, so all client I/O here is asynchronous.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest
from prometheus_client import REGISTRY

from gateway.signing import UrlSigner
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.audio.pcm import Pcm
from tests.conftest import running_gateway

pytestmark = pytest.mark.slow


def assert_error(reply, status: int, code: str, needle: str = "") -> dict:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/json"
    error = reply.json()["error"]
    assert error["code"] == code, error
    assert needle.lower() in error["message"].lower(), error
    return error


async def exchange(base_url: str, data: bytes, *, read_seconds: float = 10.0) -> tuple[bytes, float]:
    """Sends raw bytes, reads until the server closes; the reply and how long it took."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.monotonic()
    writer.write(data)
    await writer.drain()
    try:
        reply = await asyncio.wait_for(reader.read(), timeout=read_seconds)
    finally:
        writer.close()
    return reply, time.monotonic() - started


def parse(reply: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body)


def request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --- text the engines cannot take -------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("text", ["Hello\x00there", "bell \x07 ring", "nonchar \ufffe"])
async def test_control_characters_in_text_are_400(client, text: str, stream: bool) -> None:
    reply = await client.post("/v1/tts/", json={"model": "piper", "text": text, "stream": stream})
    assert assert_error(reply, 400, "bad_request", "cannot be spoken")["param"] == "text"
    reply = await client.post("/v1/audio/speech", json={"model": "tts-1", "voice": "onyx", "input": text})
    assert assert_error(reply, 400, "bad_request", "cannot be spoken")["param"] == "input"


@pytest.mark.parametrize("path", ["/v1/tts/", "/v1/audio/speech"])
async def test_a_lone_surrogate_is_400(client, path: str) -> None:
    # JSON can spell a lone surrogate (\ud800); Python's json.dumps would too, httpx's
    # encoder would not, so the body is written by hand.
    field = "text" if path == "/v1/tts/" else "input"
    body = f'{{"model": "tts-1", "voice": "alloy", "{field}": "hi \\ud800 there"}}'.encode()
    reply = await client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert_error(reply, 400, "bad_request", "not valid JSON")


async def test_clone_text_with_a_nul_is_400(client, reference: bytes) -> None:
    reply = await client.post(
        "/v1/tts/clone/", files={"reference_audio": ("ref.wav", reference)}, data={"text": "Hi\x00 there."}
    )
    assert_error(reply, 400, "bad_request", "cannot be spoken")


@pytest.mark.parametrize(
    "body",
    [
        b'{"text": "hi", "speed": NaN}',
        b'{"text": "hi", "speed": 1e400}',
        b'{"text": "hi", "speed": -Infinity}',
        b"[" * 50_000,
        b'{"text": "hi", "voice": "' + b"v" * 1000 + b'"}',
    ],
    ids=["nan", "overflow", "-inf", "deep-nesting", "long-voice-id"],
)
async def test_hostile_json_is_400(client, body: bytes) -> None:
    reply = await client.post("/v1/tts/", content=body, headers={"Content-Type": "application/json"})
    assert_error(reply, 400, "bad_request")


# --- numbers out of range in forms ------------------------------------------------------


@pytest.fixture(scope="module")
def short_wav() -> bytes:
    return encode_audio(Pcm(np.zeros(16000, np.float32), 16000), FORMATS["wav"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_speakers", "99999999999"),
        ("min_speakers", "-1"),
        ("max_speakers", "33"),
        ("min_speakers", "1e3"),
    ],
)
async def test_speaker_counts_out_of_range_are_400(client, short_wav: bytes, field: str, value: str) -> None:
    reply = await client.post("/v1/stt/", files={"file": ("a.wav", short_wav)}, data={"diarize": "true", field: value})
    assert assert_error(reply, 400, "bad_request")["param"] == field


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "-0.5", "2"])
async def test_openai_temperature_out_of_range_is_400(client, short_wav: bytes, value: str) -> None:
    reply = await client.post(
        "/v1/audio/transcriptions",
        files={"file": ("a.wav", short_wav)},
        data={"model": "whisper-1", "temperature": value},
    )
    assert assert_error(reply, 400, "bad_request")["param"] == "temperature"


# --- bodies: authenticated first, bounded, timed ----------------------------------------


async def test_a_huge_body_without_a_key_is_refused_before_it_is_read(gateway) -> None:
    head = request("POST", "/v1/tts/", {"Content-Type": "application/json", "Content-Length": str(200 * 1024 * 1024)})
    reply, took = await exchange(gateway.base_url, head + b'{"text": "' + b"a" * 65536)
    status, headers, body = parse(reply)
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    # The connection is closed instead of 200 MB being read and dropped.
    assert headers["connection"] == "close" and took < 3


async def test_a_json_body_is_bounded_by_the_plan(client, gateway) -> None:
    # 5,000 characters of text is the Pro limit; a body far beyond what that needs is 413.
    async with gateway.client(await gateway.key("pro")) as pro:
        reply = await pro.post("/v1/tts/", content=b'{"text": "' + b"a" * 200_000 + b'"}')
    assert_error(reply, 413, "file_too_large")
    head = request(
        "POST",
        "/v1/tts/",
        {"Authorization": f"Bearer {await gateway.key()}", "Content-Length": str(200 * 1024 * 1024)},
    )
    reply, took = await exchange(gateway.base_url, head + b"{")
    status, headers, _ = parse(reply)
    assert (status, headers["connection"]) == (413, "close") and took < 3


def chunked_upload(megabytes: int, counter: list[int]) -> AsyncIterator[bytes]:
    """A chunked multipart clone upload of `megabytes`, counting what the client sent."""

    async def parts() -> AsyncIterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="reference_audio"; filename="big.wav"\r\n\r\n'
        block = bytes(1024 * 1024)
        for _ in range(megabytes):
            counter[0] += len(block)
            yield block
        yield b"\r\n--b--\r\n"

    return parts()


async def test_an_oversized_chunked_upload_gets_its_413_at_the_limit(client) -> None:
    # Chunked, so no Content-Length warns the gateway: it counts as the bytes arrive.
    reply = await client.post(
        "/v1/tts/clone/",
        content=chunked_upload(30, [0]),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert_error(reply, 413, "file_too_large", "20 MB")
    assert reply.headers["connection"] == "close"


async def test_an_endless_upload_is_not_read_to_its_end(client) -> None:
    # The gateway answers at 20 MB, reads and drops what follows for a moment (so that the
    # client can finish and read the 413), then closes. It used to read 256 MiB more, and
    # then uvicorn read the rest of the body to its end, however long.
    sent = [0]
    started = time.monotonic()
    try:
        reply = await client.post(
            "/v1/tts/clone/",
            content=chunked_upload(100 * 1024, sent),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert_error(reply, 413, "file_too_large")
    except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
        pass  # a client that only reads once it has sent everything sees the reset instead
    # Loopback carries about 1.2 GB/s here: what the 2 s linger reads, not 100 GB.
    assert time.monotonic() - started < 15 and sent[0] < 8 * 1024**3


async def test_a_skipped_file_part_counts_toward_the_limit(client) -> None:
    async def body() -> AsyncIterator[bytes]:
        # A file field the route does not take is read past, not stored; chunked, so no
        # Content-Length gives the size away.
        yield b'--b\r\nContent-Disposition: form-data; name="junk"; filename="junk.bin"\r\n\r\n'
        for _ in range(40):
            yield bytes(1024 * 1024)
        yield b"\r\n--b--\r\n"

    reply = await client.post(
        "/v1/tts/clone/", content=body(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert_error(reply, 413, "file_too_large")


@pytest.fixture
async def impatient(tmp_path) -> AsyncIterator:
    """A gateway with short timeouts (its upstreams are never reached)."""
    async with running_gateway(
        "127.0.0.1:9", tmp_path / "db.sqlite", header_timeout_seconds=0.5, body_idle_seconds=0.5
    ) as gateway:
        yield gateway


async def test_a_body_that_never_arrives_is_408(impatient) -> None:
    head = request("POST", "/v1/tts/", {"Authorization": f"Bearer {await impatient.key()}", "Content-Length": "100"})
    reply, took = await exchange(impatient.base_url, head + b'{"te')
    status, headers, body = parse(reply)
    assert (status, body["error"]["code"], headers["connection"]) == (408, "request_timeout", "close")
    assert took < 3


async def test_a_trickling_body_is_408(impatient) -> None:
    host, port = impatient.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    key = await impatient.key()
    writer.write(request("POST", "/v1/tts/", {"Authorization": f"Bearer {key}", "Content-Length": "1000"}))

    async def trickle() -> None:
        # A byte every 0.3 s: never idle for 0.5 s, but far below the minimum pace.
        while True:
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.3)

    trickling = asyncio.create_task(trickle())
    started = time.monotonic()
    try:
        reply = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        trickling.cancel()
        writer.close()
    assert parse(reply)[0] == 408 and time.monotonic() - started < 5


@pytest.mark.parametrize("data", [b"", b"POST /v1/tts/ HTTP/1.1\r\nHost: t", b"GET / HTTP/1.1\r\nX-Slow: "])
async def test_headers_that_never_complete_are_408(impatient, data: bytes) -> None:
    reply, took = await exchange(impatient.base_url, data)
    status, headers, body = parse(reply)
    assert (status, body["error"]["code"], headers["connection"]) == (408, "request_timeout", "close")
    assert took < 3


@pytest.mark.parametrize(
    "data", [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", b"GET /\x00 HTTP/1.1\r\n\r\n"]
)
async def test_a_request_that_is_not_http_gets_json(impatient, data: bytes) -> None:
    status, headers, body = parse((await exchange(impatient.base_url, data))[0])
    assert (status, headers["content-type"], body["error"]["code"]) == (400, "application/json", "bad_request")


async def test_405_names_the_allowed_methods(client) -> None:
    reply = await client.get("/v1/tts/")
    assert_error(reply, 405, "method_not_allowed")
    assert reply.headers["allow"] == "POST"
    assert (await client.delete("/v1/voices/")).headers["allow"] == "GET"


# --- leaving early stops the work -------------------------------------------------------


def count(code: str) -> float:
    labels = {"service": "stt", "method": "Recognize", "code": code}
    return REGISTRY.get_sample_value("speechmesh_rpc_total", labels) or 0.0


async def test_a_client_that_leaves_cancels_its_transcription(gateway, speak) -> None:
    # A minute of speech: one sentence said twelve times (made once, repeated).
    sentence = speak("The committee met on Tuesday to discuss the budget for the coming year.")
    long_speech = encode_audio(Pcm(np.tile(sentence.samples, 12), sentence.sample_rate), FORMATS["wav"])
    in_flight = {"service": "stt", "method": "Recognize"}
    cancelled = count("CANCELLED")
    async with gateway.client(await gateway.key()) as http:
        task = asyncio.create_task(
            http.post("/v1/stt/", files={"file": ("long.wav", long_speech)}, data={"model": "whisper"})
        )
        for _ in range(200):
            if REGISTRY.get_sample_value("speechmesh_rpc_in_flight", in_flight):
                break
            await asyncio.sleep(0.05)
        task.cancel()
        for _ in range(100):
            if count("CANCELLED") > cancelled:
                break
            await asyncio.sleep(0.05)
    # The service's call ended as cancelled (not finished for nobody, nor failed).
    assert count("CANCELLED") == cancelled + 1
    assert not REGISTRY.get_sample_value("speechmesh_rpc_in_flight", in_flight)


# --- previews: a key or a signed URL, and one synthesis per voice -----------------------


async def test_previews_need_a_key_or_a_signature(client, gateway) -> None:
    voices = (await client.get("/v1/voices/?model=piper")).json()["voices"]
    signed = voices[0]["preview_url"]
    path = "/v1/voices/preview/en_US-joe-medium.mp3"
    signer = UrlSigner(await gateway.keys.url_signing_secret(), 86400)
    async with gateway.client() as anonymous:
        assert_error(await anonymous.get(path), 401, "unauthorized")
        assert (await anonymous.get(signed)).status_code == 200
        tampered = signed[:-1] + ("0" if signed[-1] != "0" else "1")
        assert_error(await anonymous.get(tampered), 401, "unauthorized")
        # A signature grants its own path only.
        other = signed.replace("en_US-joe-medium", "espeak-de-f")
        assert_error(await anonymous.get(other), 401, "unauthorized")
        expired = f"{path}?{signer.query(path, now=time.time() - 3 * 86400)}"
        assert_error(await anonymous.get(expired), 401, "unauthorized")
        assert (await anonymous.get(f"{path}?{signer.query(path)}")).status_code == 200


async def test_a_preview_is_synthesized_once_however_many_ask(client) -> None:
    voices = (await client.get("/v1/voices/?model=espeak&language=sv")).json()["voices"]
    path = f"/v1/voices/preview/{voices[-1]['id']}.mp3"
    labels = {"service": "tts", "method": "Synthesize", "code": "OK"}
    before = REGISTRY.get_sample_value("speechmesh_rpc_total", labels) or 0.0
    replies = await asyncio.gather(*(client.get(path) for _ in range(8)))
    assert {reply.status_code for reply in replies} == {200}
    assert len({reply.content for reply in replies}) == 1
    assert (REGISTRY.get_sample_value("speechmesh_rpc_total", labels) or 0.0) - before == 1
