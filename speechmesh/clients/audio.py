"""The Audio client: each config-first RPC of the Audio service with the input sent in chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator

from speechmesh.clients.endpoint import Endpoint
from speechmesh.clients.uploads import AudioSource, config_then_audio
from speechmesh.v1 import audio_pb2, audio_pb2_grpc, common_pb2

SERVICE = audio_pb2.DESCRIPTOR.services_by_name["Audio"].full_name
# Every method transforms or measures its input and keeps nothing.
IDEMPOTENT = tuple((SERVICE, method.name) for method in audio_pb2.DESCRIPTOR.services_by_name["Audio"].methods)


class AudioClient:
    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        self.endpoint = endpoint
        self._stub = audio_pb2_grpc.AudioStub(endpoint.channel)
        self._timeout = timeout

    def _deadline(self, timeout: float | None) -> float:
        self.endpoint.use()
        return timeout or self._timeout

    def enhance(
        self, config: audio_pb2.EnhanceConfig, audio: AudioSource, timeout: float | None = None
    ) -> AsyncIterator[common_pb2.AudioResponse]:
        requests = config_then_audio(audio_pb2.EnhanceRequest, audio, config=config)
        return aiter(self._stub.Enhance(requests, timeout=self._deadline(timeout)))

    def dereverb(
        self, config: audio_pb2.DereverbConfig, audio: AudioSource, timeout: float | None = None
    ) -> AsyncIterator[common_pb2.AudioResponse]:
        requests = config_then_audio(audio_pb2.DereverbRequest, audio, config=config)
        return aiter(self._stub.Dereverb(requests, timeout=self._deadline(timeout)))

    def separate(
        self, config: audio_pb2.SeparateConfig, audio: AudioSource, timeout: float | None = None
    ) -> AsyncIterator[audio_pb2.SeparateResponse]:
        requests = config_then_audio(audio_pb2.SeparateRequest, audio, config=config)
        return aiter(self._stub.Separate(requests, timeout=self._deadline(timeout)))

    async def analyze(
        self, config: audio_pb2.AnalyzeConfig, audio: AudioSource, timeout: float | None = None
    ) -> audio_pb2.AnalyzeResponse:
        requests = config_then_audio(audio_pb2.AnalyzeRequest, audio, config=config)
        response: audio_pb2.AnalyzeResponse = await self._stub.Analyze(requests, timeout=self._deadline(timeout))
        return response

    def convert(
        self, config: audio_pb2.ConvertConfig, audio: AudioSource, timeout: float | None = None
    ) -> AsyncIterator[common_pb2.AudioResponse]:
        requests = config_then_audio(audio_pb2.ConvertRequest, audio, config=config)
        return aiter(self._stub.Convert(requests, timeout=self._deadline(timeout)))

    def voice_convert(
        self, config: audio_pb2.VoiceConvertConfig, audio: AudioSource, timeout: float | None = None
    ) -> AsyncIterator[common_pb2.AudioResponse]:
        requests = config_then_audio(audio_pb2.VoiceConvertRequest, audio, config=config)
        return aiter(self._stub.VoiceConvert(requests, timeout=self._deadline(timeout)))

    def speech_to_speech(
        self, config: audio_pb2.SpeechToSpeechConfig, audio: AudioSource, timeout: float | None = None
    ) -> AsyncIterator[common_pb2.AudioResponse]:
        requests = config_then_audio(audio_pb2.SpeechToSpeechRequest, audio, config=config)
        return aiter(self._stub.SpeechToSpeech(requests, timeout=self._deadline(timeout)))
