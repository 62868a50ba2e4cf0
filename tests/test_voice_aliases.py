"""The hosted API's voice ids (the seed page's `af_bella`, Kokoro v1.0's packs) stand for the
nearest installed voice: listed with what they stand for, disclosed in X-Voice."""

from __future__ import annotations

import grpc
import pytest

from services.tts.aliases import HOSTED_VOICES, stand_in
from services.tts.synthesizer import VoiceCard
from speechmesh.v1 import tts_pb2, tts_pb2_grpc
from tests.conftest import decode, transcribe, word_error_rate

pytestmark = pytest.mark.slow

TEXT = "Good morning, the train to the airport leaves in ten minutes."


def card(voice_id: str, gender: str, languages: tuple[str, ...] = ("ja", "en", "fr", "it", "es")) -> VoiceCard:
    return VoiceCard(voice_id, voice_id, "kokoro", languages[0], "ja-JP", gender, 24000, languages)  # type: ignore[arg-type]


def test_an_alias_stands_for_a_voice_of_its_model_gender_and_language() -> None:
    installed = [card("jf_alpha", "female"), card("jf_nezumi", "female"), card("jm_kumo", "male")]
    assert stand_in(HOSTED_VOICES["af_bella"], installed).id == "jf_nezumi"  # type: ignore[union-attr]
    assert stand_in(HOSTED_VOICES["bm_george"], installed).id == "jm_kumo"  # type: ignore[union-attr]
    assert stand_in(HOSTED_VOICES["ff_siwis"], [card("jf_alpha", "female")]).id == "jf_alpha"  # type: ignore[union-attr]
    # No installed voice speaks Chinese, and Piper's Joe is another model.
    assert stand_in(HOSTED_VOICES["zf_xiaobei"], installed) is None
    joe = VoiceCard("en_US-joe-medium", "Joe", "piper", "en", "en-US", "male", 22050)
    assert stand_in(HOSTED_VOICES["am_adam"], [joe]) is None


async def test_aliases_are_listed_with_what_they_stand_for(client) -> None:
    voices = {v["id"]: v for v in (await client.get("/v1/voices/?model=kokoro")).json()["voices"]}
    assert voices["af_bella"] == {
        "id": "af_bella",
        "name": "Bella",
        "model": "kokoro",
        "language": "en",
        "gender": "female",
        "preview_url": voices["af_bella"]["preview_url"],
        "alias_of": "jf_nezumi",
    }
    assert voices["am_michael"]["alias_of"] == "jm_kumo" and voices["am_michael"]["gender"] == "male"
    assert "alias_of" not in voices["jf_nezumi"], "real voices are not aliases"
    assert "zf_xiaobei" not in voices, "an alias no installed voice can speak for is not listed"
    english = {v["id"] for v in (await client.get("/v1/voices/?language=en-GB")).json()["voices"]}
    assert {"bf_emma", "bm_george"} <= english and "af_bella" not in english


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"model": "kokoro", "voice": "af_bella", "text": TEXT}, "/v1/tts/"),
        ({"voice": "af_bella", "text": TEXT, "stream": True}, "/v1/tts/"),
        ({"model": "tts-1", "voice": "af_bella", "input": TEXT}, "/v1/audio/speech"),
    ],
    ids=["tts", "tts-stream-without-model", "openai"],
)
async def test_an_alias_speaks_and_discloses_its_voice(client, whisper, body: dict, path: str) -> None:
    reply = await client.post(path, json=body)
    assert reply.status_code == 200, reply.text
    assert (reply.headers["x-model"], reply.headers["x-voice"], reply.headers["x-language"]) == (
        "kokoro",
        "jf_nezumi",
        "en",
    )
    assert decode(reply.content)[0].size > 0
    assert word_error_rate(TEXT, transcribe(whisper, reply.content)) <= 0.2


async def test_an_alias_that_stands_for_nothing_is_404(client, tts_channel) -> None:
    reply = await client.post("/v1/tts/", json={"model": "kokoro", "voice": "zf_xiaobei", "text": "hi"})
    assert reply.status_code == 404 and reply.json()["error"]["list_url"] == "/v1/voices/?model=kokoro"
    # An alias belongs to its model: another model does not have it.
    stub = tts_pb2_grpc.TextToSpeechStub(tts_channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in stub.Synthesize(tts_pb2.SynthesizeRequest(text="hi", model="piper", voice="af_bella")):
            pass
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
