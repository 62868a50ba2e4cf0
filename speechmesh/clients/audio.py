"""The Audio client: each config-first RPC of the Audio service with the input sent in chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from speechmesh.clients.endpoint import Endpoint, EndpointClient
from speechmesh.clients.uploads import AudioSource, config_then_audio
from speechmesh.v1 import audio_pb2, audio_pb2_grpc

SERVICE = audio_pb2.DESCRIPTOR.services_by_name["Audio"].full_name
# Every method transforms or measures its input and keeps nothing.
IDEMPOTENT = tuple((SERVICE, method.name) for method in audio_pb2.DESCRIPTOR.services_by_name["Audio"].methods)


class AudioClient(EndpointClient):
    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        super().__init__(endpoint, timeout)
        self._stub = audio_pb2_grpc.AudioStub(endpoint.channel)

    def _stream(
        self,
        rpc: Callable[..., Any],
        message: Callable[..., Any],
        config: Any,
        audio: AudioSource,
        timeout: float | None,
    ) -> AsyncIterator[Any]:
        """The replies of a config-first, audio-streaming RPC whose replies stream too."""
        return aiter(rpc(config_then_audio(message, audio, config=config), timeout=self._deadline(timeout)))

    def enhance(
        self, config: audio_pb2.EnhanceConfig, audio: AudioSource, timeout: float | None = None
    ) -> AsyncIterator[audio_pb2.ProcessedAudio]:
        return self._stream(self._stub.Enhance, audio_pb2.EnhanceRequest, config, audio, timeout)

    def dereverb(
        self, config: audio_pb2.DereverbConfig, audio: AudioSource, timeout: float | None = None
    ) -> AsyncIterator[audio_pb2.ProcessedAudio]:
        return self._stream(self._stub.Dereverb, audio_pb2.DereverbRequest, config, audio, timeout)

    def separate(
        self, config: audio_pb2.SeparateConfig, audio: AudioSource, timeout: float | None = None
    ) -> AsyncIterator[audio_pb2.SeparateResponse]:
        return self._stream(self._stub.Separate, audio_pb2.SeparateRequest, config, audio, timeout)

    async def analyze(
        self, config: audio_pb2.AnalyzeConfig, audio: AudioSource, timeout: float | None = None
    ) -> audio_pb2.AnalyzeResponse:
        requests = config_then_audio(audio_pb2.AnalyzeRequest, audio, config=config)
        response: audio_pb2.AnalyzeResponse = await self._stub.Analyze(requests, timeout=self._deadline(timeout))
        return response

    def convert(
        self, config: audio_pb2.ConvertConfig, audio: AudioSource, timeout: float | None = None
    ) -> AsyncIterator[audio_pb2.ProcessedAudio]:
        return self._stream(self._stub.Convert, audio_pb2.ConvertRequest, config, audio, timeout)

    def voice_convert(
        self, config: audio_pb2.VoiceConvertConfig, audio: AudioSource, timeout: float | None = None
    ) -> AsyncIterator[audio_pb2.ProcessedAudio]:
        return self._stream(self._stub.VoiceConvert, audio_pb2.VoiceConvertRequest, config, audio, timeout)

    def speech_to_speech(
        self, config: audio_pb2.SpeechToSpeechConfig, audio: AudioSource, timeout: float | None = None
    ) -> AsyncIterator[audio_pb2.ProcessedAudio]:
        return self._stream(self._stub.SpeechToSpeech, audio_pb2.SpeechToSpeechRequest, config, audio, timeout)
