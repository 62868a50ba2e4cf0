"""Chat servicer: reads each call's config, hands the turn or translation to its pipeline
and streams what it answers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import grpc

from services.chat.speech_translate import SpeechTranslator
from services.chat.voice_chat import VoiceChat
from speechmesh.common import limits
from speechmesh.common.errors import InvalidArgument, PayloadTooLarge
from speechmesh.convert import output_spec
from speechmesh.runtime.blocking import Blocking
from speechmesh.runtime.refusals import refusing
from speechmesh.runtime.uploads import read_audio
from speechmesh.v1 import chat_pb2, chat_pb2_grpc


async def _config(messages: AsyncIterator[Any]) -> Any:
    first = await anext(messages, None)
    if first is None or not first.HasField("config"):
        raise InvalidArgument("The first message must carry the config.")
    return first.config


async def _audio(messages: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    """The audio chunks after the config, refused past the upload limit."""
    size = 0
    async for message in messages:
        if not message.HasField("audio_content"):
            raise InvalidArgument("Only the first message may carry the config.")
        size += len(message.audio_content)
        if size > limits.AUDIO_UPLOAD_MAX_BYTES:
            raise PayloadTooLarge(
                f"The audio is larger than {limits.AUDIO_UPLOAD_MAX_BYTES // (1024 * 1024)} MB.",
                max_bytes=str(limits.AUDIO_UPLOAD_MAX_BYTES),
                param="audio",
            )
        if message.audio_content:
            yield message.audio_content


class ChatServicer(chat_pb2_grpc.ChatServicer):
    def __init__(self, voice_chat: VoiceChat, translator: SpeechTranslator, blocking: Blocking) -> None:
        """`blocking` admits calls: gated per pipeline, not per model, since a turn's cost is
        mostly its STT and TTS calls (gated in their own services) around one language model."""
        self._voice_chat = voice_chat
        self._translator = translator
        self._blocking = blocking

    @refusing
    async def VoiceChat(
        self, request_iterator: AsyncIterator[chat_pb2.VoiceChatRequest], context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[chat_pb2.VoiceChatResponse, None]:
        config = await _config(request_iterator)
        output = output_spec(config.output, default="mp3")
        # The turn is closed with this generator (a caller who left): its writer and speech stop.
        async with (
            self._blocking.admit("voice-chat"),
            contextlib.aclosing(self._voice_chat.turn(config, _audio(request_iterator), output)) as turn,
        ):
            async for response in turn:
                yield response

    @refusing
    async def SpeechTranslate(
        self, request_iterator: AsyncIterator[chat_pb2.SpeechTranslateRequest], context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[chat_pb2.SpeechTranslateResponse, None]:
        config = await _config(request_iterator)
        output = output_spec(config.output, default="mp3")
        async with self._blocking.admit("speech-translate"):
            with await read_audio(request_iterator, limits.AUDIO_UPLOAD_MAX_BYTES, "file") as upload:
                async with contextlib.aclosing(self._translator.translate(config, upload, output)) as replies:
                    async for response in replies:
                        yield response
