"""Voice chat and speech translation through the real gateway, chat, STT and TTS services:
spoken questions answered with real speech, conversations kept per key, server-sent
events, translations heard back in their language, errors, and an STT outage."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
import pytest_asyncio
import soxr

from services.stt.registry import build_engines as build_stt_engines
from services.stt.server import create_server as create_stt_server
from services.stt.settings import SttSettings
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import output_format
from speechmesh.common.audio.pcm import Pcm
from speechmesh.speakers.world import similarity
from tests.conftest import Gateway, decode, running_chat, running_gateway, serving, transcribe, word_error_rate, words
from tests.llm_stub import WORDS, Stub


def _wav(pcm: Pcm) -> bytes:
    return encode_audio(pcm, output_format("wav"))


def _path(url: str) -> str:
    return urlsplit(url).path


async def _stt_words(client: httpx.AsyncClient, audio: bytes, language: str) -> str:
    heard = await client.post(
        "/v1/stt/", files={"file": ("speech.mp3", audio)}, data={"model": "whisper", "language": language}
    )
    assert heard.status_code == 200, heard.text
    return str(heard.json()["text"])


async def test_a_spoken_question_gets_a_transcript_an_answer_and_its_speech(
    client: httpx.AsyncClient, speak: Callable[[str], Pcm], whisper
) -> None:
    # Not about France: asked that, SmolLM2-135M answers in French now and then ("Le Grand
    # Paris, la femme de la France."), which the English reply voice reads as gibberish.
    question = _wav(speak("Why is the sky blue?"))
    answer = await client.post("/v1/voice-chat/", files={"audio": ("question.wav", question, "audio/wav")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"conversation_id", "user_text", "ai_text", "audio_url", "credits_used"}
    assert {"sky", "blue"} <= set(words(body["user_text"]))
    assert body["credits_used"] == 3 and body["conversation_id"].startswith("conv_")
    assert body["ai_text"].strip()[-1] in ".!?" or body["ai_text"].endswith("...")
    speech = await client.get(_path(body["audio_url"]))
    assert speech.status_code == 200 and speech.headers["content-type"] == "audio/mpeg"
    samples, rate = decode(speech.content)
    assert samples.size / rate > 0.5
    # What was said is the reply: Whisper hears it back.
    assert word_error_rate(body["ai_text"], transcribe(whisper, speech.content)) < 0.35


async def test_real_human_speech_is_heard(client: httpx.AsyncClient, human_speech) -> None:
    answer = await client.post("/v1/voice-chat/", files={"audio": ("reading.wav", _wav(human_speech.pcm), "audio/wav")})
    assert answer.status_code == 200, answer.text
    assert word_error_rate(human_speech.text, answer.json()["user_text"]) < 0.3


async def test_a_conversation_continues_only_for_its_own_key(gateway: Gateway, client: httpx.AsyncClient) -> None:
    key, secret = await gateway.keys.create("test-chat", "pro")
    await gateway.stores.credits.grant(key.id, 1000, "test")
    async with gateway.client(secret) as own:
        first = (await own.post("/v1/voice-chat/", json={"text": "Hello, my name is Alice."})).json()
        second = await own.post(
            "/v1/voice-chat/", json={"text": "What is my name?", "conversation_id": first["conversation_id"]}
        )
    assert second.status_code == 200, second.text
    assert second.json()["conversation_id"] == first["conversation_id"]
    history = await gateway.stores.conversations.history(first["conversation_id"], key.id, 10)
    assert [turn.role for turn in history] == ["user", "assistant", "user", "assistant"]
    assert history[0].content == "Hello, my name is Alice." and history[2].content == "What is my name?"

    async with gateway.client(await gateway.key("pro")) as other:
        stolen = await other.post(
            "/v1/voice-chat/", json={"text": "And now?", "conversation_id": first["conversation_id"]}
        )
        assert stolen.status_code == 404 and stolen.json()["error"]["param"] == "conversation_id"
        assert (await other.get(_path(first["audio_url"]))).status_code == 404
    unknown = await client.post("/v1/voice-chat/", json={"text": "Hi", "conversation_id": "conv_nope"})
    assert (await client.get(_path(first["audio_url"]))).status_code == 404  # another key's, too
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("request_kwargs", "status", "param"),
    [
        ({"json": {"text": ""}}, 400, "audio"),
        ({"files": {"text": (None, "Hello")}, "data": {}}, 200, None),
        ({"files": {"audio": ("a.wav", b"RIFF"), "text": (None, "Hello")}}, 400, "text"),
        ({"files": {"voice": (None, "af_bella")}}, 400, "audio"),
        ({"json": {"text": "Hello", "voice": "no_such_voice"}}, 404, None),
        ({"json": {"text": "Hello", "format": "mp4"}}, 400, "format"),
        ({"json": {"text": "Hello", "stream": "yes"}}, 400, "stream"),
        ({"json": {"text": "x" * 4001}}, 400, "text"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, None),
    ],
)
async def test_each_bad_turn_gets_its_documented_error(
    client: httpx.AsyncClient, request_kwargs: dict, status: int, param: str | None
) -> None:
    answer = await client.post("/v1/voice-chat/", **request_kwargs)
    assert answer.status_code == status, answer.text
    if status != 200:
        error = answer.json()["error"]
        assert error["message"] and (param is None or error.get("param") == param), error


async def test_the_answer_streams_text_and_speech_as_events(client: httpx.AsyncClient, whisper) -> None:
    events: list[tuple[str, dict]] = []
    async with client.stream(
        "POST", "/v1/voice-chat/", json={"text": "Tell me two facts about the sun.", "stream": True}
    ) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
        name = ""
        async for line in answer.aiter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    names = [name for name, _ in events]
    assert names[0] == "transcript" and names[-1] == "done" and "error" not in names
    assert names.index("text") < names.index("audio")
    text = "".join(data["delta"] for name, data in events if name == "text")
    done = events[-1][1]
    assert text == done["ai_text"] and done["credits_used"] == 3
    audio = b"".join(base64.b64decode(data["chunk"]) for name, data in events if name == "audio")
    stored = await client.get(_path(done["audio_url"]))
    assert stored.content == audio
    assert word_error_rate(done["ai_text"], transcribe(whisper, audio)) < 0.35


async def test_a_spanish_question_is_answered_in_spanish(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/voice-chat/", json={"text": "¿Cuál es la capital de Francia?", "language": "es"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-language"] == "es"
    heard = await _stt_words(client, (await client.get(_path(answer.json()["audio_url"]))).content, "es")
    assert word_error_rate(answer.json()["ai_text"], heard) < 0.5


async def test_english_speech_is_spoken_in_spanish(client: httpx.AsyncClient, speak: Callable[[str], Pcm]) -> None:
    speech = _wav(speak("The house is very big and the garden is green."))
    answer = await client.post(
        "/v1/speech-translate/", files={"file": ("speech.wav", speech)}, data={"target_language": "es"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {
        "original_text", "translated_text", "source_language", "target_language", "audio_url", "credits_used"
    }  # fmt: skip
    assert body["source_language"] == "en" and body["target_language"] == "es"
    assert {"casa", "jardín"} <= set(words(body["translated_text"])), body
    assert answer.headers["x-translator"] == "apertium" and body["credits_used"] == 5
    heard = await _stt_words(client, (await client.get(_path(body["audio_url"]))).content, "es")
    assert word_error_rate(body["translated_text"], heard) < 0.4, heard


async def test_spanish_speech_becomes_english_through_whisper(client: httpx.AsyncClient, voices) -> None:
    spanish = voices("jf_nezumi", "La casa es muy grande y tiene un jardín muy bonito.", "es")
    speech = _wav(Pcm(spanish, 16000))
    answer = await client.post(
        "/v1/speech-translate/", files={"file": ("speech.wav", speech)}, data={"target_language": "en"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["source_language"] == "es" and answer.headers["x-translator"] == "whisper"
    assert "house" in words(body["translated_text"]), body


async def test_an_unsupported_pair_lists_the_supported_ones(
    client: httpx.AsyncClient, speak: Callable[[str], Pcm]
) -> None:
    speech = _wav(speak("Good morning."))
    answer = await client.post(
        "/v1/speech-translate/", files={"file": ("speech.wav", speech)}, data={"target_language": "ja"}
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == "target_language" and "en->es" in error["message"]


@pytest_asyncio.fixture
async def stub_chat(stub: Stub, tts_port: int, stt_port: int, tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway whose chat service asks an OpenAI-compatible server (the stub)."""
    async with (
        running_chat(
            tts_port,
            stt_port,
            engines=["openai-compatible"],
            default_model="openai-compatible",
            openai_base_url=stub.base_url,
            openai_model="stub-model",
            # Piper speaks the stub's forty words in a fraction of Kokoro's time.
            default_voice="en_US-joe-medium",
            default_tts_model="piper",
        ) as port,
        running_gateway(
            f"127.0.0.1:{tts_port}", tmp_path / "db.sqlite", f"127.0.0.1:{stt_port}", chat_address=f"127.0.0.1:{port}"
        ) as gateway,
    ):
        yield gateway


async def test_the_model_reads_the_system_prompt_and_the_conversation(stub_chat: Gateway, stub: Stub) -> None:
    async with stub_chat.client(await stub_chat.key("pro")) as http:
        first = await http.post(
            "/v1/voice-chat/", json={"text": "Remember the number 42.", "system_prompt": "Be terse."}
        )
        assert first.status_code == 200, first.text
        assert first.json()["ai_text"] == "".join(WORDS).strip()
        second = await http.post(
            "/v1/voice-chat/", json={"text": "Which number?", "conversation_id": first.json()["conversation_id"]}
        )
        assert second.status_code == 200, second.text
    sent = stub.bodies[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "Be terse."} or sent[0]["role"] == "system"
    assert [m["role"] for m in sent[1:]] == ["user", "assistant", "user"]
    assert sent[1]["content"] == "Remember the number 42." and sent[2]["content"] == first.json()["ai_text"]
    assert sent[3]["content"] == "Which number?"


async def test_a_stopped_stt_service_is_a_503_and_the_chat_recovers_with_it(
    tts_port: int, tmp_path: Path, speak: Callable[[str], Pcm]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        stt_port = probe.getsockname()[1]
    question = {"audio": ("q.wav", _wav(speak("What is two plus two?")), "audio/wav")}
    async with (
        running_chat(tts_port, stt_port, threads=1, engines=["smollm2-135m"], stt_model="faster-whisper") as chat,
        running_gateway(
            f"127.0.0.1:{tts_port}", tmp_path / "db.sqlite", f"127.0.0.1:{stt_port}", chat_address=f"127.0.0.1:{chat}"
        ) as gateway,
        gateway.client(await gateway.key("pro")) as http,
    ):
        down = await http.post("/v1/voice-chat/", files=question)
        assert down.status_code == 503 and down.json()["error"]["code"] == "model_loading", down.text
        assert "retry-after" in down.headers
        stt_settings = SttSettings(port=stt_port, workers=1, log_json=False, engines=["faster-whisper"])
        async with serving(create_stt_server(stt_settings, build_stt_engines(stt_settings)), timeout=120):
            async with asyncio.timeout(60):
                while (back := await http.post("/v1/voice-chat/", files=question)).status_code == 503:
                    await asyncio.sleep(0.5)
            assert back.status_code == 200, back.text
            assert {"what", "plus"} <= set(words(back.json()["user_text"]))


async def test_preserve_voice_moves_the_translation_toward_the_speaker(
    client: httpx.AsyncClient, human_speech, embedder
) -> None:
    """A man reading (LibriVox), translated into Spanish: with `preserve_voice` the d-vector
    of the translation is nearer his than the plain translation's, and the words survive."""
    speech = _wav(human_speech.pcm)
    replies = [
        await client.post(
            "/v1/speech-translate/",
            files={"file": ("reading.wav", speech)},
            data={"target_language": "es", "preserve_voice": keep, "format": "wav"},
        )
        for keep in ("false", "true")
    ]
    assert [reply.status_code for reply in replies] == [200, 200], replies[1].text
    speaker = embedder.embed(soxr.resample(human_speech.pcm.samples, human_speech.pcm.sample_rate, 16000))
    heard = []
    for reply in replies:
        samples, rate = decode((await client.get(_path(reply.json()["audio_url"]))).content)
        heard.append(similarity(speaker, embedder.embed(soxr.resample(samples, rate, 16000).astype(np.float32))))
    plain, kept = heard
    assert kept > plain + 0.05, heard
    audio = (await client.get(_path(replies[1].json()["audio_url"]))).content
    spanish = await _stt_words(client, audio, "es")
    assert word_error_rate(replies[1].json()["translated_text"], spanish) < 0.6, spanish


def test_long_speech_is_adapted_in_segments_as_it_would_be_whole(
    speak: Callable[[str], Pcm], voices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WORLD runs over ~20 s segments cut in pauses, memory bounded by a segment: the output
    is as long as the input and sounds as WORLD over the whole would (its spectrogram, seam
    included; WORLD's phase is its own in each segment, so samples are not compared)."""
    import librosa

    from services.chat import speech_translate
    from services.chat.speech_translate import _adapted, _quiet_cuts
    from speechmesh.speakers import world
    from speechmesh.speakers.dvector import DVectorEmbedder

    meter = DVectorEmbedder(threads=1)
    meter.load()
    # 8 s segments (20 s in service), so that 14 s of speech has a seam.
    monkeypatch.setattr(speech_translate, "SEGMENT_SECONDS", 8.0)
    speech = speak("The quick brown fox jumps over the lazy dog while the river runs past the old mill. " * 3)
    rate = speech.sample_rate
    cuts = _quiet_cuts(speech.samples, rate)
    seam = cuts[1]
    assert cuts[-1] == speech.frames and len(cuts) >= 3 and 4 * rate < seam < 8 * rate
    target = Pcm(voices("jf_nezumi", "A voice to move toward, speaking for a little while now.", "en-us"), 16000)
    spoken, speaker = world.profile(speech, meter), world.profile(target, meter)
    segmented = _adapted(speech, spoken, speaker).samples
    whole = world.adapt(speech, spoken, speaker, pitch_from_source=True).samples[: speech.frames]
    assert segmented.size == speech.frames and np.all(np.isfinite(segmented))
    for a, b in ((seam - rate, seam + rate), (0, speech.frames)):
        x, y = (np.log(librosa.feature.melspectrogram(y=s[a:b], sr=rate) + 1e-6).ravel() for s in (segmented, whole))
        assert float(np.corrcoef(x, y)[0, 1]) > 0.9
