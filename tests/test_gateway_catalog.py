"""GET /v1/models/ and /v1/voices/ as the seed documents them, plus voice previews."""

from __future__ import annotations

import pytest

from tests.conftest import decode

pytestmark = pytest.mark.slow

MODEL_FIELDS = {
    "id",
    "name",
    "type",
    "tier",
    "languages",
    "supports_cloning",
    "supports_streaming",
    "credits_per_1k_chars",
}


async def test_models_lists_what_the_service_reports(client) -> None:
    for path in ("/v1/models/", "/v1/models"):
        reply = await client.get(path)
        assert reply.status_code == 200
    models = {m["id"]: m for m in reply.json()["models"]}
    assert set(models["piper"]) >= MODEL_FIELDS
    assert (models["piper"]["status"], models["piper"]["tier"], models["piper"]["credits_per_1k_chars"]) == (
        "ready",
        "free",
        1,
    )
    assert (models["kokoro"]["status"], models["kokoro"]["credits_per_1k_chars"]) == ("ready", 2)
    assert {"en", "ja", "fr", "it", "es"} <= set(models["kokoro"]["languages"])
    assert (models["espeak"]["status"], models["espeak"]["tier"]) == ("ready", "free")
    assert models["festival"]["status"] == "ready"
    assert models["xtts"]["status"] == "unavailable" and "xtts-v2" in models["xtts"]["unavailable_reason"]
    assert models["tortoise"]["credits_per_1k_chars"] == 4
    assert models["chatterbox"]["supports_cloning"] is True
    assert models["chatterbox"]["unavailable_reason"]


@pytest.mark.parametrize(
    ("query", "check"),
    [
        ("", lambda voices: len(voices) > 200 and {v["model"] for v in voices} >= {"piper", "kokoro", "espeak"}),
        ("?model=piper", lambda voices: [v["id"] for v in voices] == ["en_US-joe-medium"]),
        # Its five voices, and the hosted API's Kokoro ids that stand for them (aliases).
        ("?model=kokoro", lambda voices: len([v for v in voices if "alias_of" not in v]) == 5),
        ("?language=en", lambda voices: {"en_US-joe-medium", "jf_alpha", "festival-kal"} <= {v["id"] for v in voices}),
        ("?gender=male", lambda voices: {v["gender"] for v in voices} == {"male"}),
        ("?gender=female&model=festival", lambda voices: [v["id"] for v in voices] == ["festival-us-slt"]),
        ("?language=de", lambda voices: {v["id"] for v in voices} == {"espeak-de-m", "espeak-de-f"}),
        ("?language=xx", lambda voices: voices == []),
    ],
)
async def test_voices_filters_and_total(client, query: str, check) -> None:
    reply = await client.get(f"/v1/voices/{query}")
    assert reply.status_code == 200
    body = reply.json()
    assert body["total"] == len(body["voices"]) and check(body["voices"])


async def test_voice_shape_and_a_preview_that_plays(client, gateway) -> None:
    voice = (await client.get("/v1/voices")).json()["voices"][0]
    preview_url = voice.pop("preview_url")
    assert voice == {"id": "en_US-joe-medium", "name": "Joe", "model": "piper", "language": "en", "gender": "male"}
    # Signed, so that an <audio src> without a key can play it.
    assert preview_url.startswith(f"{client.base_url}/v1/voices/preview/en_US-joe-medium.mp3?expires=")
    async with gateway.client() as anonymous:
        first = await anonymous.get(preview_url)
        again = await anonymous.get(preview_url)
    assert first.status_code == 200 and first.headers["content-type"] == "audio/mpeg"
    assert first.content == again.content, "synthesized once, then served from the cache"
    samples, rate = decode(first.content)
    assert len(samples) / rate > 1.5


@pytest.mark.slow
@pytest.mark.parametrize(("voice", "language"), [("espeak-de-f", "de"), ("jf_alpha", "ja"), ("espeak-fr-fr-m", "fr")])
async def test_a_preview_speaks_the_voices_language(client, voice: str, language: str) -> None:
    preview = await client.get(f"/v1/voices/preview/{voice}.mp3")
    assert preview.status_code == 200
    # Whisper base in the STT service names the language it hears.
    heard = await client.post("/v1/stt/", files={"file": ("preview.mp3", preview.content)}, data={"model": "whisper"})
    assert heard.json()["language"] == language, heard.json()


async def test_unknown_voice_preview_and_bad_gender(client) -> None:
    assert (await client.get("/v1/voices/preview/no_such_voice.mp3")).json()["error"]["code"] == "not_found"
    reply = await client.get("/v1/voices/?gender=robot")
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "gender"


async def test_health_and_metrics_endpoints(client) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {
        "ready": True,
        "database": "reachable",
        "capabilities": {"tts": "serving", "stt": "serving", "audio": "serving", "chat": "serving"},
        "upstreams": {"tts": "SERVING", "stt": "SERVING", "audio": "SERVING", "chat": "SERVING"},
    }
    # Metrics are on their own port (tests/test_observability.py), not the API's.
    assert (await client.get("/metrics")).status_code == 404
