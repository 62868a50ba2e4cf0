"""The chat service's own calls to the STT and TTS services, over gRPC through
`speechmesh.clients`, with their errors turned back into speechmesh's typed errors.

The client mesh is opened on first use, inside the serving event loop. An upstream's own
refusal keeps its reason and fields (a voice it does not know stays a 404, audio too long
stays a 413, a model still loading stays MODEL_LOADING); anything else (down, past its
deadline, a status without speechmesh's ErrorInfo) becomes `UpstreamUnavailable`: 503 at
the gateway, and the chat service recovers with the upstream.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable

import grpc
from grpc_status import rpc_status

from speechmesh.clients.config import ClientConfig, ServiceTarget
from speechmesh.clients.mesh import Mesh
from speechmesh.clients.tts import TtsClient
from speechmesh.common import errors
from speechmesh.common.audio.pcm import Pcm
from speechmesh.runtime.status import error_info
from speechmesh.v1 import common_pb2, stt_pb2, tts_pb2

# Errors whose reason the chat service passes on as they are, by their reason.
_RELAYED = {
    cls.reason: cls
    for cls in (
        errors.InvalidArgument,
        errors.InvalidAudio,
        errors.NotFound,
        errors.ModelUnavailable,
        errors.ModelLoading,
        errors.PayloadTooLarge,
    )
}


def relayed(error: grpc.aio.AioRpcError, service: str) -> errors.SpeechmeshError:
    """The typed error an upstream's status stands for."""
    try:
        info = error_info(rpc_status.from_call(error))  # type: ignore[arg-type]
    except ValueError:  # details that do not match the status: gRPC replaced the service's own
        info = None
    kind = _RELAYED.get(info.reason) if info is not None else None
    if kind is None or info is None:
        return errors.UpstreamUnavailable(
            f"The {service.upper()} service cannot answer now; retry in a few seconds.", service=service
        )
    relayed_error = kind(error.details() or "", **dict(info.metadata))
    # The reason travels with the error even where a subclass (AudioTooLong) had its own.
    relayed_error.reason = info.reason
    return relayed_error


def _linear16(text: str, voice: str, model: str, sample_rate: int) -> tts_pb2.SynthesizeRequest:
    return tts_pb2.SynthesizeRequest(
        text=text,
        voice=voice,
        model=model,
        output=common_pb2.AudioOutputSpec(encoding=common_pb2.LINEAR16, sample_rate_hertz=sample_rate),
    )


class Upstream:
    def __init__(self, stt: ServiceTarget | None, tts: ServiceTarget | None) -> None:
        self._config = ClientConfig(stt=stt, tts=tts)
        self._mesh: Mesh | None = None

    def _open(self) -> Mesh:
        if self._mesh is None:
            self._mesh = Mesh(self._config)
        return self._mesh

    async def transcribe(
        self, config: stt_pb2.RecognitionConfig, audio: AsyncIterable[bytes]
    ) -> stt_pb2.RecognizeResponse:
        stt = self._open().stt
        if stt is None:
            raise errors.UpstreamUnavailable(
                "This chat service has no STT service configured (SPEECHMESH_CHAT_STT_ADDRESS).", service="stt"
            )
        try:
            return await stt.recognize(config, audio)
        except grpc.aio.AioRpcError as error:
            raise relayed(error, "stt") from None

    async def speak(self, text: str, voice: str, model: str, sample_rate: int) -> tuple[Pcm, tts_pb2.SynthesisResult]:
        """`text` spoken as mono PCM at `sample_rate`, and what spoke it."""
        try:
            audio, result = await self._tts().synthesize(_linear16(text, voice, model, sample_rate))
        except grpc.aio.AioRpcError as error:
            raise relayed(error, "tts") from None
        return Pcm.from_linear16(audio, sample_rate), result

    async def speak_streaming(
        self, text: str, voice: str, model: str, sample_rate: int
    ) -> tuple[tts_pb2.SynthesisPlan, AsyncGenerator[Pcm, None]]:
        """What will speak `text`, and its mono PCM at `sample_rate` piece by piece as the
        TTS service synthesizes it (its first piece is a short one: the first audio sooner).
        Closing the generator cancels the synthesis."""
        try:
            plan, chunks = await self._tts().stream(_linear16(text, voice, model, sample_rate))
        except grpc.aio.AioRpcError as error:
            raise relayed(error, "tts") from None

        async def pieces() -> AsyncGenerator[Pcm, None]:
            carry = b""  # a chunk may end inside a sample
            try:
                async for chunk in chunks:
                    data = carry + chunk
                    whole = len(data) - len(data) % 2
                    carry = data[whole:]
                    if whole:
                        yield Pcm.from_linear16(data[:whole], sample_rate)
            except grpc.aio.AioRpcError as error:
                raise relayed(error, "tts") from None
            finally:
                await chunks.aclose()

        return plan, pieces()

    async def voices(self, language: str = "", model: str = "") -> list[tts_pb2.Voice]:
        try:
            return await self._tts().voices(tts_pb2.ListVoicesRequest(language=language, model=model))
        except grpc.aio.AioRpcError as error:
            raise relayed(error, "tts") from None

    def _tts(self) -> TtsClient:
        tts = self._open().tts
        if tts is None:
            raise errors.UpstreamUnavailable(
                "This chat service has no TTS service configured (SPEECHMESH_CHAT_TTS_ADDRESS).", service="tts"
            )
        return tts

    async def close(self) -> None:
        if self._mesh is not None:
            await self._mesh.close()
