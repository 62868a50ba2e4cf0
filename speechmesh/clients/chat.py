"""The Chat client: a voice-chat turn and a speech translation."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import grpc

from speechmesh.clients.endpoint import Endpoint, EndpointClient
from speechmesh.clients.uploads import AudioSource, config_then_audio
from speechmesh.v1 import chat_pb2, chat_pb2_grpc

SERVICE = chat_pb2.DESCRIPTOR.services_by_name["Chat"].full_name
# A voice-chat turn appends to its conversation: never replayed. A translation keeps nothing.
IDEMPOTENT = ((SERVICE, "SpeechTranslate"),)


async def _replies(call: grpc.aio.StreamStreamCall[Any, Any]) -> AsyncGenerator[Any, None]:
    """The call's replies; closing the generator (a caller who left) cancels the call, so
    the service stops writing and speaking."""
    try:
        async for reply in call:
            yield reply
    finally:
        call.cancel()


class ChatClient(EndpointClient):
    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        super().__init__(endpoint, timeout)
        self._stub = chat_pb2_grpc.ChatStub(endpoint.channel)

    def voice_chat(
        self, config: chat_pb2.VoiceChatConfig, audio: AudioSource = b"", timeout: float | None = None
    ) -> AsyncGenerator[chat_pb2.VoiceChatResponse, None]:
        """One turn: `config.text`, or the user's speech in `audio`."""
        requests = config_then_audio(chat_pb2.VoiceChatRequest, audio, config=config)
        return _replies(self._stub.VoiceChat(requests, timeout=self._deadline(timeout)))

    def speech_translate(
        self, config: chat_pb2.SpeechTranslateConfig, audio: AudioSource, timeout: float | None = None
    ) -> AsyncGenerator[chat_pb2.SpeechTranslateResponse, None]:
        requests = config_then_audio(chat_pb2.SpeechTranslateRequest, audio, config=config)
        return _replies(self._stub.SpeechTranslate(requests, timeout=self._deadline(timeout)))
