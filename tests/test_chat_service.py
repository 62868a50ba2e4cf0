"""The chat service over gRPC with a scripted language model (a test double behind the
LanguageModel Protocol, writing at a known pace) and the session's real STT and TTS
services: text and speech interleave, a caller who leaves stops the model, the reply ends
at a sentence boundary, and the prompt keeps the newest history that fits."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence

import grpc
import pytest
import pytest_asyncio

from services.chat import prompt
from services.chat.engine_set import ChatEngines
from services.chat.processors import LanguageModel, Message, OnDelta, Translator, VoiceMeter, Written
from services.chat.sentences import SentenceCutter
from speechmesh.common.errors import UpstreamUnavailable
from speechmesh.common.models import ModelCard, ModelKind, Tier
from speechmesh.common.registry import EngineRegistry, EngineSpec
from speechmesh.v1 import chat_pb2, chat_pb2_grpc, common_pb2
from tests.conftest import decode, running_chat, transcribe, word_error_rate

SENTENCES = ["The first sentence is here.", "A second one follows it.", "And the third one ends the reply."]


class ScriptedModel:
    """Writes `SENTENCES` a word at a time, `pause` seconds a word; records whether it was stopped."""

    context_tokens = 512
    languages: frozenset[str] | None = None

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self.prompts: list[Sequence[Message]] = []
        self.stopped = threading.Event()

    def load(self) -> None:
        pass

    def warm_up(self) -> None:
        pass

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 1

    def reply(self, messages: Sequence[Message], max_tokens: int, on_delta: OnDelta) -> Written:
        self.prompts.append(list(messages))
        written = ""
        pieces = [word + " " for word in " ".join(SENTENCES).split()]
        for count, piece in enumerate(pieces):
            if count >= max_tokens:
                return Written(written, finished=False)
            time.sleep(self.pause)
            written += piece
            if on_delta(piece):
                self.stopped.set()
                return Written(written, finished=False)
        return Written(written, finished=True)


def _engines(model: ScriptedModel) -> ChatEngines:
    card = ModelCard("scripted", "Scripted", ModelKind.CHAT, Tier.STANDARD)
    models: EngineRegistry[LanguageModel] = EngineRegistry(
        [EngineSpec(card, factory=lambda: model)], enabled=["scripted"], default_model="scripted"
    )
    translators: EngineRegistry[Translator] = EngineRegistry([], enabled=[], default_model="")
    meters: EngineRegistry[VoiceMeter] = EngineRegistry([], enabled=[], default_model="")
    return ChatEngines(models, translators, meters)


@pytest_asyncio.fixture
async def scripted(tts_port: int, stt_port: int, request: pytest.FixtureRequest) -> AsyncIterator[tuple]:
    model = ScriptedModel(getattr(request, "param", 0.08))
    async with (
        running_chat(
            tts_port,
            stt_port,
            _engines(model),
            reply_tokens=100,
            default_voice="en_US-joe-medium",
            default_tts_model="piper",
        ) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield chat_pb2_grpc.ChatStub(channel), model


def _turn(config: chat_pb2.VoiceChatConfig, audio: bytes = b"") -> AsyncIterator[chat_pb2.VoiceChatRequest]:
    async def requests() -> AsyncIterator[chat_pb2.VoiceChatRequest]:
        yield chat_pb2.VoiceChatRequest(config=config)
        if audio:
            yield chat_pb2.VoiceChatRequest(audio_content=audio)

    return requests()


async def test_each_sentence_is_spoken_while_the_next_is_written(scripted: tuple, whisper) -> None:
    stub, _ = scripted
    config = chat_pb2.VoiceChatConfig(text="Talk to me.", output=common_pb2.AudioOutputSpec(encoding=common_pb2.WAV))
    kinds: list[str] = []
    deltas: list[str] = []
    audio = b""
    reply = chat_pb2.VoiceChatReply()
    async for response in stub.VoiceChat(_turn(config)):
        kind = response.WhichOneof("payload")
        kinds.append(kind)
        if kind == "text_delta":
            deltas.append(response.text_delta)
        elif kind == "audio" and response.audio.HasField("audio_content"):
            audio += response.audio.audio_content
        elif kind == "reply":
            reply = response.reply
    assert kinds[0] == "transcript" and kinds[-1] == "reply"
    # The first sentence's speech arrives before the last sentence is written.
    assert kinds.index("audio") < max(i for i, kind in enumerate(kinds) if kind == "text_delta")
    assert "".join(deltas) == reply.text == " ".join(SENTENCES)
    assert reply.voice == "en_US-joe-medium" and reply.model == "scripted"
    samples, rate = decode(audio)
    assert samples.size / rate > 3
    assert word_error_rate(reply.text, transcribe(whisper, audio)) < 0.2


@pytest.mark.parametrize("scripted", [0.3], indirect=True)
async def test_a_caller_who_leaves_stops_the_model(scripted: tuple) -> None:
    stub, model = scripted
    call = stub.VoiceChat(_turn(chat_pb2.VoiceChatConfig(text="Talk to me.")))
    async for response in call:
        if response.WhichOneof("payload") == "text_delta":
            break
    call.cancel()
    # The model writes a word every 0.3 s: stopped at its next word, not after the ~20 left.
    await asyncio.to_thread(model.stopped.wait, 3)
    assert model.stopped.is_set()


async def test_the_prompt_carries_the_system_prompt_and_the_history(scripted: tuple) -> None:
    stub, model = scripted
    history = [
        chat_pb2.ChatMessage(role="user", content="Hi."),
        chat_pb2.ChatMessage(role="assistant", content="Hello!"),
    ]
    config = chat_pb2.VoiceChatConfig(text="And now?", system_prompt="Be kind.", history=history)
    async for _ in stub.VoiceChat(_turn(config)):
        pass
    assert model.prompts[-1] == [
        Message("system", "Be kind."),
        Message("user", "Hi."),
        Message("assistant", "Hello!"),
        Message("user", "And now?"),
    ]


@pytest.mark.parametrize(
    ("config", "audio", "code"),
    [
        (chat_pb2.VoiceChatConfig(), b"", grpc.StatusCode.INVALID_ARGUMENT),
        (chat_pb2.VoiceChatConfig(text="Hi"), b"RIFF", grpc.StatusCode.INVALID_ARGUMENT),
        (chat_pb2.VoiceChatConfig(text="Hi", voice="nobody"), b"", grpc.StatusCode.NOT_FOUND),
        (
            chat_pb2.VoiceChatConfig(text="Hi", history=[chat_pb2.ChatMessage(role="system", content="x")]),
            b"",
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (chat_pb2.VoiceChatConfig(text="Hi", system_prompt="x" * 4001), b"", grpc.StatusCode.INVALID_ARGUMENT),
        (chat_pb2.VoiceChatConfig(), b"not audio at all", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_bad_turns_are_refused_with_their_status(
    scripted: tuple, config: chat_pb2.VoiceChatConfig, audio: bytes, code: grpc.StatusCode
) -> None:
    stub, _ = scripted
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in stub.VoiceChat(_turn(config, audio)):
            pass
    assert refused.value.code() == code, refused.value.details()


class FailingModel(ScriptedModel):
    """Writes two words, then its server fails (as an OpenAI-compatible one can)."""

    def reply(self, messages: Sequence[Message], max_tokens: int, on_delta: OnDelta) -> Written:
        on_delta("Well, ")
        on_delta("the ")
        raise UpstreamUnavailable("The language model's server failed.")


async def test_a_failing_model_ends_the_turn_at_once_with_503(tts_port: int, stt_port: int) -> None:
    async with (
        running_chat(tts_port, stt_port, _engines(FailingModel(0)), default_voice="en_US-joe-medium") as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        stub = chat_pb2_grpc.ChatStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            async with asyncio.timeout(10):  # not the call's deadline: at once
                async for _ in stub.VoiceChat(_turn(chat_pb2.VoiceChatConfig(text="Hi"))):
                    pass
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE


def test_sentences_are_handed_over_whole_and_a_stopped_reply_ends_at_one() -> None:
    cutter = SentenceCutter("en")
    assert cutter.feed("Dr. Smith arrived at 3.5 km") == []
    assert cutter.feed(" from town. Then he") == ["Dr. Smith arrived at 3.5 km from town."]
    assert cutter.end(finished=False) == []  # "Then he" was cut off
    cutter = SentenceCutter("en")
    assert cutter.feed("It goes on and on without an end in sig") == []
    assert cutter.end(finished=False) == ["It goes on and on without an end in..."]
    cutter = SentenceCutter("en")
    cutter.feed("Done")
    assert cutter.end(finished=True) == ["Done"]


def test_the_prompt_keeps_the_newest_history_that_fits() -> None:
    model = ScriptedModel(0)
    model.context_tokens = 200
    history = [Message("user" if i % 2 == 0 else "assistant", f"message {i} " + "word " * 10) for i in range(12)]
    messages = prompt.messages(model, "", history, "Now?", reply_tokens=40, language="en")
    kept = messages[1:-1]
    assert messages[0].role == "system" and messages[-1] == Message("user", "Now?")
    assert kept and kept[-1] == history[-1] and kept[0].role == "user"
    assert len(kept) < len(history)
    assert sum(model.count_tokens(m.content) for m in messages) <= model.context_tokens - 40
