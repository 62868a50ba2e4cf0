"""The STT client: whole-file and live recognition."""

from __future__ import annotations

from collections.abc import AsyncIterator

from speechmesh.clients.endpoint import Endpoint, EndpointClient
from speechmesh.clients.uploads import AudioSource, config_then_audio
from speechmesh.v1 import stt_pb2, stt_pb2_grpc

SERVICE = stt_pb2.DESCRIPTOR.services_by_name["SpeechToText"].full_name
# Whole-file recognition has no side effects; gRPC replays it only while the audio sent so
# far fits its retry buffer. A live stream is not replayed: its audio is gone.
IDEMPOTENT = ((SERVICE, "Recognize"),)


class SttClient(EndpointClient):
    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        super().__init__(endpoint, timeout)
        self._stub = stt_pb2_grpc.SpeechToTextStub(endpoint.channel)

    async def recognize(
        self, config: stt_pb2.RecognitionConfig, audio: AudioSource, timeout: float | None = None
    ) -> stt_pb2.RecognizeResponse:
        """Transcribes an audio file (bytes, or its chunks as they are read)."""
        requests = config_then_audio(stt_pb2.RecognizeRequest, audio, config=config)
        response: stt_pb2.RecognizeResponse = await self._stub.Recognize(requests, timeout=self._deadline(timeout))
        return response

    def streaming_recognize(
        self, config: stt_pb2.StreamingRecognitionConfig, audio: AudioSource, timeout: float | None = None
    ) -> AsyncIterator[stt_pb2.StreamingRecognizeResponse]:
        """Interim and final results while `audio` (raw, as `config.audio_format` says) arrives."""
        requests = config_then_audio(stt_pb2.StreamingRecognizeRequest, audio, streaming_config=config)
        return aiter(self._stub.StreamingRecognize(requests, timeout=self._deadline(timeout)))
