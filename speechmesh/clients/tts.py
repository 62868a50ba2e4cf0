"""The TTS client: synthesis whole or streamed, cloning and voice listings, each request
sent to the pods serving its model.

TTS can run as one pod kind serving every engine or as several (per-model pods, each with
its own `SPEECHMESH_TTS_ENGINES`): a model named in the target's `models` goes to its own
endpoint, everything else to the default one. A voice named without its model goes to the
pods of the model that lists it. Listings ask every endpoint and keep each model's entries
from the endpoint it is routed to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import grpc

from speechmesh.clients.endpoint import Endpoint
from speechmesh.clients.uploads import AudioSource, config_then_audio
from speechmesh.v1 import tts_pb2, tts_pb2_grpc

log = logging.getLogger(__name__)

SERVICE = tts_pb2.DESCRIPTOR.services_by_name["TextToSpeech"].full_name
# Every TTS method is free of side effects: a call that failed before any reply can be replayed.
IDEMPOTENT = tuple((SERVICE, method) for method in ("ListVoices", "Synthesize", "SynthesizeStream", "Clone"))


async def collect(
    call: grpc.aio.UnaryStreamCall[Any, tts_pb2.SynthesizeResponse]
    | grpc.aio.StreamStreamCall[Any, tts_pb2.SynthesizeResponse],
) -> tuple[bytes, tts_pb2.SynthesisResult]:
    """The whole file and its result from a call answering SynthesizeResponse messages."""
    parts: list[bytes] = []
    result = tts_pb2.SynthesisResult()
    async for message in call:
        if message.HasField("audio_content"):
            parts.append(message.audio_content)
        elif message.HasField("result"):
            result = message.result
    return b"".join(parts), result


class TtsClient:
    def __init__(self, endpoints: Sequence[Endpoint], timeout: float) -> None:
        """`endpoints[0]` serves every model that no other endpoint names."""
        self.endpoints = tuple(endpoints)
        self._default = endpoints[0]
        self._owner = {model: endpoint for endpoint in endpoints[1:] for model in endpoint.models}
        self._stubs = {endpoint.name: tts_pb2_grpc.TextToSpeechStub(endpoint.channel) for endpoint in endpoints}
        self._timeout = timeout
        # Voice ids are stable: once found, a voice's model is not asked for again.
        self._voice_models: dict[str, str] = {}

    @property
    def routed(self) -> bool:
        """Whether some model is served by pods of its own."""
        return bool(self._owner)

    def endpoint(self, model: str) -> Endpoint:
        """The endpoint serving `model` ('' = the default pods' default model)."""
        return self._owner.get(model, self._default)

    def _stub(self, model: str) -> tts_pb2_grpc.TextToSpeechStub:
        endpoint = self.endpoint(model)
        endpoint.use()
        return self._stubs[endpoint.name]

    async def _listing(
        self, query: tts_pb2.ListVoicesRequest, timeout: float | None
    ) -> tuple[list[tts_pb2.Voice], list[grpc.aio.AioRpcError]]:
        """The voices of every endpoint that answered (each model's from the endpoint it is
        routed to), and the errors of those that did not (logged)."""
        endpoints = [self.endpoint(query.model)] if query.model else list(self.endpoints)
        for endpoint in endpoints:
            endpoint.use()
        replies = await asyncio.gather(
            *(self._stubs[endpoint.name].ListVoices(query, timeout=timeout or self._timeout) for endpoint in endpoints),
            return_exceptions=True,
        )
        voices: list[tts_pb2.Voice] = []
        failures: list[grpc.aio.AioRpcError] = []
        for endpoint, reply in zip(endpoints, replies, strict=True):
            if isinstance(reply, grpc.aio.AioRpcError):
                log.warning("voice listing failed", extra={"endpoint": endpoint.name, "grpc_code": reply.code().name})
                failures.append(reply)
            elif isinstance(reply, BaseException):
                raise reply
            else:
                voices += [voice for voice in reply.voices if self.endpoint(voice.model) is endpoint]
        return voices, failures

    async def voices(self, query: tts_pb2.ListVoicesRequest, timeout: float | None = None) -> list[tts_pb2.Voice]:
        """The voices of every endpoint (of the model's own when `query` names one). An
        endpoint that cannot answer is left out while another can; when none can, its error
        is raised."""
        voices, failures = await self._listing(query, timeout)
        if len(failures) == (1 if query.model else len(self.endpoints)):
            raise failures[0]
        return voices

    async def model_of_voice(self, voice: str) -> str:
        """The model whose endpoint lists `voice`, or '' (the default pods then answer for it:
        an unknown voice is their 404). While some endpoint cannot answer, a voice none of the
        others lists may be one of its own: its error is raised (a 503 to retry, not a 404)."""
        if voice not in self._voice_models:
            listed, failures = await self._listing(tts_pb2.ListVoicesRequest(), None)
            self._voice_models.update((v.id, v.model) for v in listed)
            if voice not in self._voice_models and failures:
                raise failures[0]
        return self._voice_models.get(voice, "")

    async def _routed(self, request: tts_pb2.SynthesizeRequest) -> tts_pb2_grpc.TextToSpeechStub:
        # A pod finds a voice's model itself among those it loads; across pods the client must.
        if self.routed and request.voice and not request.model:
            request.model = await self.model_of_voice(request.voice)
        return self._stub(request.model)

    async def synthesize(
        self, request: tts_pb2.SynthesizeRequest, timeout: float | None = None
    ) -> tuple[bytes, tts_pb2.SynthesisResult]:
        """The whole file and what spoke it."""
        stub = await self._routed(request)
        return await collect(stub.Synthesize(request, timeout=timeout or self._timeout))

    async def stream(
        self, request: tts_pb2.SynthesizeRequest, timeout: float | None = None
    ) -> tuple[tts_pb2.SynthesisPlan, AsyncGenerator[bytes, None]]:
        """The plan (model, voice, language) and the audio chunks as each sentence is
        synthesized. The first message is awaited here, so a bad request raises before the
        caller commits to a stream, and the caller can name the voice up front. Closing the
        chunk iterator (or leaving it) cancels the synthesis."""
        stub = await self._routed(request)
        call = stub.SynthesizeStream(request, timeout=timeout or self._timeout)
        messages = aiter(call)
        try:
            first = await anext(messages, None)
        except BaseException:
            call.cancel()
            raise
        plan = first.plan if first is not None and first.HasField("plan") else tts_pb2.SynthesisPlan()

        async def chunks() -> AsyncGenerator[bytes, None]:
            try:
                # A service that sends no plan (one older than its client) starts with audio.
                if first is not None and first.HasField("audio_content"):
                    yield first.audio_content
                async for message in messages:
                    if message.HasField("audio_content"):
                        yield message.audio_content
            finally:
                call.cancel()

        return plan, chunks()

    async def clone(
        self, config: tts_pb2.CloneConfig, reference: AudioSource, timeout: float | None = None
    ) -> tuple[bytes, tts_pb2.SynthesisResult]:
        """Speech of `config.text` in the voice of the `reference` recording."""
        requests = config_then_audio(tts_pb2.CloneRequest, reference, config=config)
        return await collect(self._stub(config.model).Clone(requests, timeout=timeout or self._timeout))
