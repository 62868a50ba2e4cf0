"""POST /v1/tts/clone/ over HTTP: a real clone with its similarity headers and audit
record, the seed's unavailable cloning models, and each refusal."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from speechmesh.common import limits
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.audio.pcm import Pcm
from tests.conftest import CLONE_TEXT as TEXT
from tests.conftest import decode, transcribe, word_error_rate

pytestmark = pytest.mark.slow


def post(http, reference: bytes | None, **fields):
    files = {"reference_audio": ("reference.wav", reference)} if reference is not None else None
    return http.post("/v1/tts/clone/", files=files, data=fields or None)


async def test_clone_answers_audio_with_similarity_and_is_audited(gateway, reference, whisper) -> None:
    key, secret = await gateway.keys.create("cloner", "pro")
    await gateway.stores.credits.grant(key.id, 100, "test")
    async with gateway.client(secret) as http:
        reply = await post(http, reference, text=TEXT)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "audio/mpeg" and reply.headers["x-model"] == "world-adapt"
    similarity, base = float(reply.headers["x-speaker-similarity"]), float(reply.headers["x-base-similarity"])
    assert similarity >= base and reply.headers["x-base-voice"]
    # Cloning: 4 credits per started 1,000 characters, whatever model it starts from.
    assert (reply.headers["x-credits-used"], reply.headers["x-credits-remaining"]) == ("4", "96")
    samples, rate = decode(reply.content)
    assert len(samples) / rate > 3 and word_error_rate(TEXT, transcribe(whisper, reply.content)) <= 0.35
    [record] = await gateway.stores.audit.records(key.id)
    assert record.reference_sha256 == hashlib.sha256(reference).hexdigest()
    assert (record.model, record.characters, record.reference_bytes) == ("world-adapt", len(TEXT), len(reference))


@pytest.mark.parametrize(
    ("fields", "status", "code", "needle"),
    [
        ({"text": "Hi.", "model": "chatterbox"}, 404, "not_found", "not available"),
        ({"text": "Hi.", "model": "cosyvoice2"}, 404, "not_found", "not available"),
        ({"text": "Hi.", "model": "piper"}, 400, "bad_request", "does not clone"),
        ({}, 400, "bad_request", "'text' is required"),
        ({"text": "Hi.", "format": "ogg"}, 400, "bad_request", "format"),
    ],
)
async def test_bad_clone_requests(client, reference, fields, status, code, needle) -> None:
    reply = await post(client, reference, **fields)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["code"] == code and needle in reply.json()["error"]["message"]


async def test_missing_and_oversized_references(client) -> None:
    missing = await post(client, None, text="Hi.")
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "reference_audio"
    too_big = await post(client, bytes(limits.CLONE_REFERENCE_MAX_BYTES + 1), text="Hi.")
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "file_too_large"
    silence = encode_audio(Pcm(np.zeros(16000 * 5, np.float32), 16000), FORMATS["wav"])
    quiet = await post(client, silence, text="Hi.")
    assert quiet.status_code == 400 and "voiced" in quiet.json()["error"]["message"]
