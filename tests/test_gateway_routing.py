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
async def routed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    pods = {
        model: build_engines(TtsSettings(engines=[model], default_model=model, cloners=[]))
        for model in ("espeak", "festival")
    }
    async with running_service(pods["espeak"]) as default_port, running_service(pods["festival"]) as festival_port:
        await wait_serving(default_port)
        await wait_serving(festival_port)
        async with running_gateway(
            f"127.0.0.1:{default_port}",
            tmp_path_factory.mktemp("routed") / "speechmesh.db",
            tts_routes={"festival": f"127.0.0.1:{festival_port}"},
        ) as gateway:
            yield gateway


@pytest_asyncio.fixture(scope="module")
async def client(routed: Gateway):
    async with routed.client(routed.key()) as http:
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
    assert ready["upstreams"] == {"tts": "SERVING", "tts:festival": "SERVING", "stt": "UNREACHABLE"}


async def test_models_sharing_a_pod_share_its_channel() -> None:
    from gateway.settings import GatewaySettings
    from gateway.upstreams import Upstreams

    routes = {"kokoro": "gpu:1", "xtts": "gpu:1", "espeak": "cpu:1", "piper": "cpu:1"}
    upstreams = Upstreams(GatewaySettings(tts_address="cpu:1", tts_routes=routes))
    try:
        assert list(upstreams.tts_stubs) == ["tts", "tts:kokoro,xtts"]
        assert [upstreams.tts_owner(model) for model in ("xtts", "piper", "festival", "")] == [
            "tts:kokoro,xtts",
            "tts",
            "tts",
            "tts",
        ]
    finally:
        await upstreams.close()
