"""The OpenAPI document tells the truth: checked by reading it, and by schemathesis, which
generates requests from it (valid and invalid) against the real gateway and services and
checks every answer against it: no 5xx, only documented statuses, content types, headers
and bodies, 405 with Allow, auth not ignored, invalid data refused."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.app import create_app
from gateway.plans import PLANS
from gateway.settings import GatewaySettings
from tests.conftest import Gateway, running_chat, running_gateway
from tests.test_chat_service import ScriptedModel, _engines

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture(scope="module")
def document(tmp_path_factory) -> dict:
    settings = GatewaySettings(database_path=tmp_path_factory.mktemp("openapi") / "db.sqlite")
    return create_app(settings).openapi()


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_no_status_is_documented_that_the_gateway_never_sends(document: dict) -> None:
    for name, operation in operations(document):
        assert "422" not in operation["responses"], name
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_every_v1_route_documents_its_errors_and_key(document: dict) -> None:
    for name, operation in operations(document):
        if " /v1/" not in name:
            continue
        for status in ("401", "403", "429", "500", "503"):
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (name, status)
        assert {"bearer": []} in operation["security"], name
        for status, response in operation["responses"].items():
            headers = response.get("headers", {})
            assert status in ("401", "403") or "X-RateLimit-Reset" in headers, (name, status)


# Every route that takes a body is billed but the two free audio tools.
FREE_WITH_BODIES = {"POST /v1/audio/analyze/", "POST /v1/audio/convert/"}
WITH_BODIES = {
    "POST /v1/tts/",
    "POST /v1/tts/batch/",
    "POST /v1/tts/clone/",
    "POST /v1/stt/",
    "POST /v1/audio/speech",
    "POST /v1/audio/transcriptions",
    "POST /v1/audio/translations",
    "POST /v1/audio/enhance/",
    "POST /v1/audio/dereverb/",
    "POST /v1/audio/separate/",
    "POST /v1/voice-convert/",
    "POST /v1/speech-to-speech/",
    "POST /v1/voice-chat/",
    "POST /v1/speech-translate/",
    *FREE_WITH_BODIES,
}


def test_billed_routes_document_their_credits(document: dict) -> None:
    billed = {
        name
        for name, op in operations(document)
        if "X-Credits-Used" in op["responses"]["200" if "200" in op["responses"] else "202"].get("headers", {})
    }
    assert billed == WITH_BODIES - FREE_WITH_BODIES
    for name in billed:
        assert "402" in dict(operations(document))[name]["responses"], name
    for name in FREE_WITH_BODIES:
        assert "402" not in dict(operations(document))[name]["responses"], name


def test_bodies_are_described(document: dict) -> None:
    bodies = {name: op["requestBody"]["content"] for name, op in operations(document) if "requestBody" in op}
    assert set(bodies) == WITH_BODIES
    text = bodies["POST /v1/tts/"]["application/json"]["schema"]["properties"]["text"]
    assert (text["minLength"], text["maxLength"]) == (1, 50_000)
    stt = bodies["POST /v1/stt/"]["multipart/form-data"]
    assert stt["schema"]["properties"]["file"] == {
        "type": "string",
        "format": "binary",
        "description": stt["schema"]["properties"]["file"]["description"],
        "title": "File",
    }
    assert stt["schema"]["required"] == ["file"]
    assert stt["schema"]["properties"]["max_speakers"]["maximum"] == 32
    assert bodies["POST /v1/tts/clone/"]["multipart/form-data"]["schema"]["required"] == ["reference_audio", "text"]


@pytest_asyncio.fixture
async def fuzzed(tts_port: int, stt_port: int, audio_port: int, tmp_path: Path) -> AsyncIterator[Gateway]:
    """The real gateway and services, but for a chat service whose model is scripted: with
    SmolLM2 each valid voice-chat case writes and speaks a whole reply (minutes for the run);
    the chat service's own paths (validation, upstream calls, errors) are the same."""
    scripted = _engines(ScriptedModel(0.0))
    async with (
        running_chat(tts_port, stt_port, scripted, default_voice="en_US-joe-medium", default_tts_model="piper") as chat,
        running_gateway(
            f"127.0.0.1:{tts_port}",
            tmp_path / "db.sqlite",
            f"127.0.0.1:{stt_port}",
            audio_address=f"127.0.0.1:{audio_port}",
            chat_address=f"127.0.0.1:{chat}",
        ) as gateway,
    ):
        yield gateway


@pytest.mark.slow
async def test_schemathesis_finds_nothing(fuzzed: Gateway, monkeypatch) -> None:
    """Bounded: 5 generated cases per operation and phase, a fixed seed (about 20 s)."""
    # Pro's text limit (generated texts past 5,000 characters are refused, not spoken) without
    # its 60 requests a minute, which would answer most cases 429 (the gateway runs in this process).
    monkeypatch.setitem(
        PLANS, "fuzzing", replace(PLANS["pro"], name="fuzzing", requests_per_minute=0, concurrent_requests=0)
    )
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "run",
        f"{fuzzed.base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {await fuzzed.key('fuzzing')}",
        "--checks",
        "all",
        # Valid data can still name a voice or model that does not exist (404).
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        "5",
        # Stateful testing follows links between operations; this API declares none.
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "20261130",
        "--workers",
        "1",
        "--request-timeout",
        "120",
        "--no-shrink",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=400)
    # Generated bodies can be megabytes of one character: shown once, the report stays readable.
    report = re.sub(r"((?:\\u[0-9a-fA-F]{4})|.)\1{50,}", r"\1[...]", output.decode())
    assert process.returncode == 0, report[-8000:]
