"""The Chat client: a voice-chat turn and a speech translation."""

from __future__ import annotations

from collections.abc import AsyncIterator

from speechmesh.clients.endpoint import Endpoint, EndpointClient
from speechmesh.clients.uploads import AudioSource, config_then_audio
from speechmesh.v1 import chat_pb2, chat_pb2_grpc

SERVICE = chat_pb2.DESCRIPTOR.services_by_name["Chat"].full_name
# A voice-chat turn appends to its conversation: never replayed. A translation keeps nothing.
IDEMPOTENT = ((SERVICE, "SpeechTranslate"),)


class ChatClient(EndpointClient):
    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        super().__init__(endpoint, timeout)
        self._stub = chat_pb2_grpc.ChatStub(endpoint.channel)

    def voice_chat(
        self, config: chat_pb2.VoiceChatConfig, audio: AudioSource = b"", timeout: float | None = None
    ) -> AsyncIterator[chat_pb2.VoiceChatResponse]:
        """One turn: `config.text`, or the user's speech in `audio`."""
        requests = config_then_audio(chat_pb2.VoiceChatRequest, audio, config=config)
        return aiter(self._stub.VoiceChat(requests, timeout=self._deadline(timeout)))

    def speech_translate(
        self, config: chat_pb2.SpeechTranslateConfig, audio: AudioSource, timeout: float | None = None
    ) -> AsyncIterator[chat_pb2.SpeechTranslateResponse]:
        requests = config_then_audio(chat_pb2.SpeechTranslateRequest, audio, config=config)
        return aiter(self._stub.SpeechTranslate(requests, timeout=self._deadline(timeout)))
