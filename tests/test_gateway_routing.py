"""Per-model TTS pods: the gateway sends each model's requests to the pod that serves it
(`tts_routes`) and merges the pods' model and voice listings. Two real TTS services on
loopback: eSpeak in the default pod, Festival in its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from services.tts.registry import build_engines
from services.tts.settings import TtsSettings
from tests.conftest import Gateway, decode, running_gateway, running_service, transcribe, wait_serving, word_error_rate

pytestmark = pytest.mark.slow

TEXT = "Please call Stella and ask her to bring these things with her."


@pytest_asyncio.fixture(scope="module")
async def pods() -> AsyncIterator[dict[str, str]]:
    """Addresses of the two pods, SERVING: 'default' (eSpeak) and 'festival'."""
    engines = {
        name: build_engines(TtsSettings(engines=[model], default_model=model, cloners=[]))
        for name, model in (("default", "espeak"), ("festival", "festival"))
    }
    async with running_service(engines["default"]) as default, running_service(engines["festival"]) as festival:
        await wait_serving(default)
        await wait_serving(festival)
        yield {"default": f"127.0.0.1:{default}", "festival": f"127.0.0.1:{festival}"}


@pytest_asyncio.fixture(scope="module")
async def routed(pods: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    database = tmp_path_factory.mktemp("routed") / "speechmesh.db"
    async with running_gateway(pods["default"], database, tts_routes={"festival": pods["festival"]}) as gateway:
        yield gateway


@pytest_asyncio.fixture(scope="module")
async def client(routed: Gateway):
    async with routed.client(await routed.key()) as http:
        yield http


async def test_models_come_from_the_pod_that_serves_them(client) -> None:
    models = (await client.get("/v1/models/")).json()["models"]
    ids = [model["id"] for model in models if model["type"] == "tts"]
    assert len(ids) == len(set(ids)), ids  # each pod lists every model; one card each
    status = {model["id"]: model["status"] for model in models}
    assert status["espeak"] == status["festival"] == "ready"
    assert status["piper"] == "unavailable"


async def test_voices_of_every_pod_are_listed(client) -> None:
    voices = (await client.get("/v1/voices/")).json()
    models = {voice["model"] for voice in voices["voices"]}
    assert models == {"espeak", "festival"} and voices["total"] == len(voices["voices"])
    festival = (await client.get("/v1/voices/?model=festival")).json()["voices"]
    assert {voice["id"] for voice in festival} == {"festival-us-slt", "festival-kal"}


@pytest.mark.parametrize("stream", [False, True])
async def test_a_routed_model_is_synthesized_by_its_pod(client, whisper, stream: bool) -> None:
    body = {"text": TEXT, "model": "festival", "voice": "festival-us-slt", "format": "wav", "stream": stream}
    reply = await client.post("/v1/tts/", json=body)
    assert reply.status_code == 200, reply.text
    assert decode(reply.content)[1] == 32000
    assert word_error_rate(TEXT, transcribe(whisper, reply.content)) <= 0.2


async def test_a_voice_without_its_model_goes_to_its_models_pod(client) -> None:
    reply = await client.post("/v1/tts/", json={"text": TEXT, "voice": "festival-kal", "format": "wav"})
    assert reply.status_code == 200, reply.text
    assert (reply.headers["x-model"], reply.headers["x-voice"]) == ("festival", "festival-kal")
    unknown = await client.post("/v1/tts/", json={"text": TEXT, "voice": "no_such_voice"})
    assert unknown.status_code == 404 and "/v1/voices/" in unknown.text


async def test_openai_speech_and_clone_reach_the_routed_pod(client) -> None:
    speech = await client.post(
        "/v1/audio/speech",
        json={"model": "festival", "voice": "festival-us-slt", "input": TEXT, "response_format": "wav"},
    )
    assert speech.status_code == 200 and decode(speech.content)[1] == 32000
    # Festival's pod answers that Festival does not clone (the default pod would say the same
    # about a model it does not load only by 404).
    clone = await client.post(
        "/v1/tts/clone/",
        files={"reference_audio": ("reference.wav", speech.content)},
        data={"text": TEXT, "model": "festival"},
    )
    assert clone.status_code == 400 and "does not clone" in clone.json()["error"]["message"]


async def test_unrouted_models_go_to_the_default_pod(client) -> None:
    reply = await client.post("/v1/tts/", json={"text": TEXT, "format": "wav"})
    assert reply.status_code == 200 and reply.headers["x-model"] == "espeak"
    # Neither pod loads Piper: the default pod answers for it.
    missing = await client.post("/v1/tts/", json={"text": TEXT, "model": "piper"})
    assert missing.status_code == 404 and "not enabled" in missing.json()["error"]["message"]


async def test_previews_and_readiness_span_the_pods(client, routed: Gateway) -> None:
    preview = await client.get("/v1/voices/preview/festival-kal.mp3")
    assert preview.status_code == 200 and decode(preview.content)[0].size > 0
    ready = (await client.get("/readyz")).json()  # no STT service here
    assert ready["upstreams"] == {"tts": "SERVING", "tts[festival]": "SERVING", "stt": "UNREACHABLE"}


async def test_a_routed_pod_that_is_down_takes_only_its_models_away(
    pods: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    database = tmp_path_factory.mktemp("down") / "speechmesh.db"
    # Port 9 (discard) has no gRPC server: the Festival pods are gone. Any SERVING gRPC server
    # stands in for STT here, since readiness only asks its health.
    options = {"tts_routes": {"festival": "127.0.0.1:9"}, "stt_address": pods["default"]}
    async with (
        running_gateway(pods["default"], database, **options) as gateway,
        gateway.client(await gateway.key()) as http,
    ):
        voices = (await http.get("/v1/voices/")).json()["voices"]
        assert voices and {voice["model"] for voice in voices} == {"espeak"}
        models = {model["id"]: model for model in (await http.get("/v1/models/")).json()["models"]}
        assert models["espeak"]["status"] == "ready"
        assert models["festival"]["status"] == "unavailable"
        assert "unreachable" in models["festival"]["unavailable_reason"]
        down = await http.post("/v1/tts/", json={"text": TEXT, "model": "festival"})
        assert down.status_code == 503 and down.json()["error"]["code"]
        assert (await http.post("/v1/tts/", json={"text": TEXT})).status_code == 200
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["upstreams"]["tts[festival]"] == "UNREACHABLE"
        assert (await http.get("/v1/voices/?model=festival")).status_code == 503


async def test_models_sharing_a_pod_share_its_channel() -> None:
    from gateway.settings import GatewaySettings, client_config
    from speechmesh.clients.mesh import Mesh

    routes = {"kokoro": "gpu:1", "xtts": "gpu:1", "espeak": "cpu:1", "piper": "cpu:1"}
    mesh = Mesh(client_config(GatewaySettings(tts_address="cpu:1", tts_routes=routes)))
    try:
        assert mesh.tts is not None
        assert [endpoint.name for endpoint in mesh.tts.endpoints] == ["tts", "tts[kokoro,xtts]"]
        assert [mesh.tts.endpoint(model).name for model in ("xtts", "piper", "festival", "")] == [
            "tts[kokoro,xtts]",
            "tts",
            "tts",
            "tts",
        ]
    finally:
        await mesh.close()
