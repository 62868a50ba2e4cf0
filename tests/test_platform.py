"""The platform through real HTTP: rate limits, credits, tasks with signed webhooks (a real
worker process, killed mid-task), results for their owner only, the SSRF guard.

The services here are scripted (silence, held on events): what is under test is what the
gateway and its worker enforce and record, not speech."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
import threading
import time
import wave
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import boto3
import pytest
from standardwebhooks import Webhook

from gateway.store.results import new_id, valid_id
from services.stt.server import create_server as create_stt_server
from services.stt.settings import SttSettings
from speechmesh.common.models import Tier
from speechmesh.runtime.server import stop_server
from tests.conftest import Gateway, running_gateway, running_service, wait_serving
from tests.fakes import ScriptedRecognizer, ScriptedSynthesizer, scripted_registry, scripted_stt_engines
from tests.servers import postgres_server, redis_server, s3_server

ROOT = Path(__file__).resolve().parent.parent
HELLO = "Hello from TTS.ai! This is a test."  # the page's example: 34 characters, 2 credits on Kokoro


def _wav(seconds: float) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * int(16000 * seconds))
    return buffer.getvalue()


@pytest.fixture
async def services() -> AsyncIterator[tuple[int, int, threading.Event]]:
    """A scripted TTS service (its synthesis waits for the yielded event) and STT service."""
    hold = threading.Event()
    hold.set()
    release = threading.Event()
    release.set()
    synthesizer = ScriptedSynthesizer(release, hold=hold)
    stt_server, stt_port = await create_stt_server(
        SttSettings(port=0, workers=1, log_json=False), scripted_stt_engines(ScriptedRecognizer())
    )
    try:
        # A standard-tier model, as Kokoro: 2 credits per 1,000 characters.
        async with running_service(scripted_registry(synthesizer, tier=Tier.STANDARD), workers=8) as tts_port:
            await wait_serving(tts_port)
            await wait_serving(stt_port)
            yield tts_port, stt_port, hold
    finally:
        await stop_server(stt_server, grace=0)


@pytest.fixture
async def gateway(services, tmp_path) -> AsyncIterator[Gateway]:
    tts_port, stt_port, _ = services
    async with running_gateway(
        f"127.0.0.1:{tts_port}", tmp_path / "db.sqlite", f"127.0.0.1:{stt_port}", webhook_allow_private=True
    ) as running:
        yield running


async def _key_id(gateway: Gateway, secret: str) -> int:
    key = await gateway.keys.lookup(secret)
    assert key is not None
    return key.id


async def _balance_settles(gateway: Gateway, key_id: int, expected: int) -> None:
    """Requests are settled just after their response has left: wait for it, briefly."""
    async with asyncio.timeout(5):
        while await gateway.stores.credits.balance(key_id) != expected:
            await asyncio.sleep(0.02)


def _rate_headers(reply) -> tuple[int, int, int]:
    return (
        int(reply.headers["x-ratelimit-limit"]),
        int(reply.headers["x-ratelimit-remaining"]),
        int(reply.headers["x-ratelimit-reset"]),
    )


async def test_a_pro_key_gets_60_requests_a_minute_and_every_answer_says_so(gateway) -> None:
    async with gateway.client(await gateway.key("pro")) as http:
        for sent in range(1, 61):
            # An error (404) is a request too, and carries the headers.
            reply = await http.get("/v1/tasks/task_" + "x" * 32)
            assert reply.status_code == 404
            limit, remaining, reset = _rate_headers(reply)
            assert (limit, remaining) == (60, 60 - sent)
            assert time.time() < reset <= time.time() + 61
        refused = await http.get("/v1/models/")
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
        assert _rate_headers(refused)[:2] == (60, 0)
        assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Another key has its own budget; the internal plan has none.
    async with gateway.client(await gateway.key("enterprise")) as http:
        assert _rate_headers(await http.get("/v1/tasks/task_" + "x" * 32))[:2] == (300, 299)
    async with gateway.client(await gateway.key("internal")) as http:
        assert "x-ratelimit-limit" not in (await http.get("/v1/tasks/task_" + "x" * 32)).headers


async def test_the_sixth_request_at_once_of_a_pro_key_is_refused(services, gateway) -> None:
    _, _, hold = services
    hold.clear()
    async with gateway.client(await gateway.key("pro")) as http:
        body = {"text": "Held.", "format": "wav", "stream": True}
        streams = [http.stream("POST", "/v1/tts/", json=body) for _ in range(5)]
        replies = await asyncio.gather(*(stream.__aenter__() for stream in streams))
        try:
            assert [reply.status_code for reply in replies] == [200] * 5
            # Streams carry the limits too, in their headers (the 5 requests counted).
            assert sorted(_rate_headers(reply)[1] for reply in replies) == [55, 56, 57, 58, 59]
            sixth = await http.post("/v1/tts/", json=body)
            assert sixth.status_code == 429 and sixth.json()["error"]["code"] == "rate_limited"
            # Refused for being one too many at once, it did not use up the minute (55 left, not 54).
            assert sixth.headers["retry-after"] == "1" and _rate_headers(sixth)[:2] == (60, 55)
        finally:
            hold.set()
            for reply, stream in zip(replies, streams, strict=True):
                await reply.aread()
                await stream.__aexit__(None, None, None)
        # The five have ended: their slots are free again (once the gateway has settled them,
        # just after their last bytes left).
        async with asyncio.timeout(5):
            while (again := await http.post("/v1/tts/", json={"text": "Free.", "format": "wav"})).status_code == 429:
                await asyncio.sleep(0.05)
        assert again.status_code == 200


async def test_credits_are_charged_for_work_done_and_refused_before_work(gateway) -> None:
    secret = await gateway.key("pro", credits=3)
    key_id = await _key_id(gateway, secret)
    async with gateway.client(secret) as http:
        spoken = await http.post("/v1/tts/", json={"text": HELLO, "format": "wav", "model": "fake"})
        assert spoken.status_code == 200
        assert (spoken.headers["x-credits-used"], spoken.headers["x-credits-remaining"]) == ("2", "1")
        refused = await http.post("/v1/tts/", json={"text": HELLO, "format": "wav", "model": "fake"})
        assert refused.status_code == 402
        assert refused.json()["error"] == {
            "code": "insufficient_credits",
            "message": "You do not have enough credits for this request.",
            "credits_required": 2,
            "credits_available": 1,
        }
        assert refused.headers["x-credits-remaining"] == "1" and "x-ratelimit-remaining" in refused.headers
        assert await gateway.stores.credits.balance(key_id) == 1
        # Free: listing, and a failed request (an unknown voice: its hold goes back).
        await gateway.stores.credits.grant(key_id, 10, "test")
        assert (await http.get("/v1/models/")).status_code == 200
        missing = await http.post("/v1/tts/", json={"text": HELLO, "model": "fake", "voice": "nobody"})
        assert missing.status_code == 404
        await _balance_settles(gateway, key_id, 11)
        # No model named: held at the highest rate (4), charged at the one that spoke (2).
        unnamed = await http.post("/v1/tts/", json={"text": HELLO, "format": "wav"})
        assert (unnamed.headers["x-credits-used"], unnamed.headers["x-credits-remaining"]) == ("2", "9")
        await _balance_settles(gateway, key_id, 9)
    ledger = await gateway.stores.credits.ledger(key_id)
    assert [(entry.kind, entry.amount, entry.route) for entry in ledger] == [
        ("charge", 2, "/v1/tts/"),
        ("grant", 10, ""),
        ("charge", 2, "/v1/tts/"),
        ("grant", 3, ""),
    ]


async def test_audio_longer_than_its_packets_say_is_stopped_at_what_the_credits_pay(gateway, monkeypatch) -> None:
    """A container can under-state its length: the transcription is bounded by the credits,
    and past them the answer is 402 with nothing charged."""
    monkeypatch.setattr("gateway.uploads.packet_seconds", lambda _: 30.0)  # the file's claim
    secret = await gateway.key("pro", credits=2)
    async with gateway.client(secret) as http:
        reply = await http.post("/v1/stt/", files={"file": ("a.wav", _wav(61), "audio/wav")})
        assert reply.status_code == 402, reply.text
        error = reply.json()["error"]
        assert (error["code"], error["credits_required"], error["credits_available"]) == ("insufficient_credits", 4, 2)
        assert (await http.post("/v1/stt/", files={"file": ("a.wav", _wav(59), "audio/wav")})).status_code == 200
    await _balance_settles(gateway, await _key_id(gateway, secret), 0)


async def test_transcription_is_charged_by_the_decoded_minutes(gateway) -> None:
    secret = await gateway.key("pro", credits=100)
    async with gateway.client(secret) as http:
        files = {"file": ("a.wav", _wav(61), "audio/wav")}
        reply = await http.post("/v1/stt/", files=files)
        assert reply.status_code == 200
        # 61 s: two started minutes at 2 credits each.
        assert (reply.headers["x-credits-used"], reply.headers["x-credits-remaining"]) == ("4", "96")
    await _balance_settles(gateway, await _key_id(gateway, secret), 96)


async def test_webhook_urls_into_the_gateways_network_are_refused(services, tmp_path) -> None:
    tts_port, stt_port, _ = services
    async with (
        running_gateway(f"127.0.0.1:{tts_port}", tmp_path / "db.sqlite", f"127.0.0.1:{stt_port}") as gateway,
        gateway.client(await gateway.key("pro", credits=5)) as http,
    ):
        refused = (
            "http://127.0.0.1:9/hook",
            "http://169.254.169.254/latest",  # cloud metadata
            "http://[::1]/",
            "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1: global as IPv6, loopback inside
            "http://[::ffff:10.0.0.1]/",
            "http://[::1/",  # not a URL
            "http://example.com:99999/",
            "ftp://example.com/",
        )
        for url in refused:
            reply = await http.post("/v1/tts/batch/", json={"texts": ["Hi."], "webhook_url": url})
            assert reply.status_code == 400, url
            assert reply.json()["error"]["param"] == "webhook_url"
        assert await gateway.stores.credits.balance(1) == 5
        # A batch may be as long as its texts allow together (each at the plan's limit).
        async with gateway.client(await gateway.key("pro", credits=500)) as http:
            texts = ["Word " * 1000] * 20
            accepted = await http.post("/v1/tts/batch/", json={"texts": texts, "model": "fake"})
            assert accepted.status_code == 202 and accepted.headers["x-credits-used"] == "200"
            too_long = await http.post("/v1/tts/batch/", json={"texts": ["Hi.", "a" * 5001], "model": "fake"})
            assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "texts[1]"


async def test_results_are_their_owners_for_24_hours_only(services, tmp_path) -> None:
    tts_port, stt_port, _ = services
    async with running_gateway(
        f"127.0.0.1:{tts_port}", tmp_path / "db.sqlite", f"127.0.0.1:{stt_port}", result_seconds=1
    ) as gateway:
        owner, other = await gateway.key("pro"), await gateway.key("pro")
        result_id = new_id("task")
        await gateway.stores.results.put(
            result_id, await _key_id(gateway, owner), "application/json", "r.json", io.BytesIO(b'{"ok": 1}')
        )
        async with gateway.client(owner) as http:
            got = await http.get(f"/v1/results/{result_id}")
            assert got.status_code == 200 and got.json() == {"ok": 1}, got.text
            assert got.headers["content-type"] == "application/json"
            # Never looked up: no id that is not of the shape new_id() makes reaches a store.
            for shaped in ("../../etc/passwd", "task_" + "." * 32, "task_/" + "a" * 31, result_id + "\n"):
                assert not valid_id(shaped), shaped
            for hostile in ("..%2F..%2Fetc%2Fpasswd", "task_" + "." * 32, "task_%00" + "a" * 31, "x" * 64):
                reply = await http.get(f"/v1/results/{hostile}")
                assert reply.status_code == 404 and reply.json()["error"]["code"] == "not_found", hostile
            assert (await http.get("/v1/results/" + "x" * 65)).status_code == 400
        async with gateway.client(other) as http:
            assert (await http.get(f"/v1/results/{result_id}")).status_code == 404
        await asyncio.sleep(1.1)
        async with gateway.client(owner) as http:
            assert (await http.get(f"/v1/results/{result_id}")).status_code == 404
        assert await gateway.stores.results.purge() == 1


class Receiver:
    """A webhook receiver on loopback: refuses the first `refuse` deliveries with a 500."""

    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.received: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()
        self.attempts = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.attempts += 1
        status = "500 Internal Server Error" if self.attempts <= self.refuse else "200 OK"
        if self.attempts > self.refuse:
            await self.received.put((headers, body))
        writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


async def _worker(gateway: Gateway, tts_port: int, stt_port: int, **settings: str) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "SPEECHMESH_GATEWAY_DATABASE_PATH": str(gateway.database),
        "SPEECHMESH_GATEWAY_TTS_ADDRESS": f"127.0.0.1:{tts_port}",
        "SPEECHMESH_GATEWAY_STT_ADDRESS": f"127.0.0.1:{stt_port}",
        "SPEECHMESH_GATEWAY_WEBHOOK_ALLOW_PRIVATE": "true",
        "SPEECHMESH_GATEWAY_TASK_LEASE_SECONDS": "1",
        "SPEECHMESH_GATEWAY_WEBHOOK_RETRY_SECONDS": "0.5",
        "SPEECHMESH_GATEWAY_LOG_JSON": "false",
        "SPEECHMESH_GATEWAY_WORKER_METRICS_PORT": "0",
        **settings,
    }
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.worker", cwd=ROOT, env=env)


async def _status(http, task_id: str, wanted: str) -> dict:
    """Polls the task (with a key of the internal plan: no minute's limit to run into)."""
    async with asyncio.timeout(30):
        while True:
            reply = await http.get(f"/v1/tasks/{task_id}")
            assert reply.status_code == 200, reply.text
            if (task := reply.json())["status"] == wanted:
                return task
            await asyncio.sleep(0.1)


async def test_a_batch_task_survives_its_worker_and_its_webhook_is_signed(services, gateway) -> None:
    tts_port, stt_port, hold = services
    receiver = Receiver(refuse=1)
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    hook = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    secret = await gateway.key("internal", credits=10)
    key_id = await _key_id(gateway, secret)
    signing = await gateway.stores.webhook_secrets.rotate(key_id)
    worker = await _worker(gateway, tts_port, stt_port)
    try:
        async with gateway.client(secret) as http:
            hold.clear()
            texts = ["First one.", "Second one."]
            accepted = await http.post(
                "/v1/tts/batch/", json={"texts": texts, "format": "wav", "model": "fake", "webhook_url": hook}
            )
            assert accepted.status_code == 202, accepted.text
            task = accepted.json()
            assert task["status"] == "queued" and task["status_url"].endswith(f"/v1/tasks/{task['task_id']}")
            assert task["created_at"].endswith("Z") and task["completed_at"] is None
            assert accepted.headers["x-credits-used"] == "2" and accepted.headers["x-credits-remaining"] == "8"
            await _status(http, task["task_id"], "running")
            # Killed mid-task: another worker takes it over once the lease has run out.
            worker.send_signal(signal.SIGKILL)
            await worker.wait()
            worker = await _worker(gateway, tts_port, stt_port)
            hold.set()
            done = await _status(http, task["task_id"], "success")
            assert done["progress"] == 1.0 and done["credits_used"] == 2

            async with asyncio.timeout(30):
                headers, body = await receiver.received.get()
            assert receiver.attempts == 2  # the first was refused, the retry delivered
            payload = Webhook(signing).verify(body, headers)
            assert payload["event"] == "task.completed" and payload["status"] == "success"
            assert payload["task_id"] == task["task_id"] and payload["credits_used"] == 2
            assert payload["result_url"].endswith(f"/v1/results/{task['task_id']}")
            assert payload["created_at"].endswith("Z") and payload["completed_at"].endswith("Z")

            result = await http.get(f"/v1/results/{task['task_id']}")
            assert result.status_code == 200 and result.headers["content-type"] == "application/zip"
            with zipfile.ZipFile(io.BytesIO(result.content)) as archive:
                assert archive.namelist() == ["001.wav", "002.wav"]
                with wave.open(io.BytesIO(archive.read("001.wav"))) as audio:
                    assert audio.getnframes() > 0
        await _balance_settles(gateway, key_id, 8)
        async with gateway.client(await gateway.key("pro")) as http:
            assert (await http.get(f"/v1/tasks/{task['task_id']}")).status_code == 404
            assert (await http.get(f"/v1/results/{task['task_id']}")).status_code == 404
    finally:
        worker.kill()
        await worker.wait()
        server.close()


async def test_a_long_transcription_with_a_webhook_is_a_task(services, gateway) -> None:
    tts_port, stt_port, _ = services
    receiver = Receiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    hook = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    worker = await _worker(gateway, tts_port, stt_port)
    try:
        async with gateway.client(await gateway.key("internal", credits=10)) as http:
            files = {"file": ("a.wav", _wav(90), "audio/wav")}
            accepted = await http.post("/v1/stt/", files=files, data={"webhook_url": hook, "timestamps": "true"})
            assert accepted.status_code == 202 and accepted.headers["x-credits-used"] == "4"
            async with asyncio.timeout(30):
                _, body = await receiver.received.get()
            payload = json.loads(body)
            assert payload["status"] == "success" and payload["credits_used"] == 4
            transcript = (await http.get(f"/v1/results/{payload['task_id']}")).json()
            assert transcript["duration"] == 90.0 and transcript["words"] == []
    finally:
        worker.kill()
        await worker.wait()
        server.close()


async def test_two_gateways_on_postgresql_redis_and_s3_share_limits_credits_and_tasks(
    services, tmp_path, monkeypatch
) -> None:
    """The deployment with replicas: two gateways (no state of their own) and a worker, on one
    PostgreSQL, one Redis (limits, slots, the task queue) and one S3 bucket (results)."""
    tts_port, stt_port, _ = services
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    async with (
        postgres_server(tmp_path) as database_url,
        redis_server(tmp_path) as redis_url,
        s3_server(tmp_path) as s3_url,
    ):
        await asyncio.to_thread(boto3.client("s3", endpoint_url=s3_url).create_bucket, Bucket="results")
        shared = {
            "database_url": database_url,
            "redis_url": redis_url,
            "s3_bucket": "results",
            "s3_endpoint_url": s3_url,
        }
        tts, stt = f"127.0.0.1:{tts_port}", f"127.0.0.1:{stt_port}"
        async with (
            running_gateway(tts, tmp_path / "a.db", stt, webhook_allow_private=True, **shared) as first,
            running_gateway(tts, tmp_path / "b.db", stt, **shared) as second,
        ):
            secret = await first.key("pro", credits=4)
            async with first.client(secret) as one, second.client(secret) as two:
                for http in (one, two) * 30:
                    assert (await http.get("/v1/tasks/task_" + "x" * 32)).status_code == 404
                for http in (one, two):
                    refused = await http.get("/v1/models/")
                    assert refused.status_code == 429 and refused.headers["x-ratelimit-remaining"] == "0"
            # One balance: 2 credits spent through the first are gone from the second.
            secret = await first.key("internal", credits=4)
            async with first.client(secret) as one, second.client(secret) as two:
                spoken = await one.post("/v1/tts/", json={"text": HELLO, "format": "wav", "model": "fake"})
                assert spoken.headers["x-credits-remaining"] == "2"
                await _balance_settles(second, await _key_id(second, secret), 2)
                accepted = await two.post("/v1/tts/batch/", json={"texts": [HELLO], "format": "wav", "model": "fake"})
                assert accepted.status_code == 202 and accepted.headers["x-credits-remaining"] == "0"
                assert (await one.post("/v1/tts/", json={"text": HELLO, "model": "fake"})).status_code == 402
                # Queued on Redis by the second, run by the worker, its result in S3, read through the first.
                worker = await _worker(
                    second, tts_port, stt_port, **{f"SPEECHMESH_GATEWAY_{k.upper()}": v for k, v in shared.items()}
                )
                try:
                    await _status(one, accepted.json()["task_id"], "success")
                finally:
                    worker.kill()
                    await worker.wait()
                result = await one.get(f"/v1/results/{accepted.json()['task_id']}")
                assert result.status_code == 200 and zipfile.ZipFile(io.BytesIO(result.content)).namelist() == [
                    "001.wav"
                ]
