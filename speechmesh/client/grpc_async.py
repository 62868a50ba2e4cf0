"""`AsyncGrpcClient`: the services over gRPC for internal callers, with the REST client's
method names, arguments and results, plus live recognition.

It is a thin layer over `speechmesh.clients` (the gateway's own client layer), so it
behaves as the gateway does: TTS requests go to the pods serving their model, idempotent
calls (synthesis, listings, whole-file recognition, the audio tools) that fail as
UNAVAILABLE before any reply are replayed by the channel's retry policy
(`speechmesh.clients.channels`: `ClientConfig.retry_attempts`, 3 by default), and each
call has a deadline: its `timeout=` in seconds, else the service's `timeout_seconds` (300).
Failures are raised as `speechmesh.client.errors`, the gRPC error their `__cause__`.

The channels are opened on first use, inside the running event loop, and closed by
`aclose()` (or `async with`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from speechmesh.client import rpc_results as results
from speechmesh.client.errors import BadRequestError
from speechmesh.client.results import Analysis, LiveResult, Model, Transcript, Voice
from speechmesh.client.rpc_errors import api_errors
from speechmesh.clients.audio import AudioClient
from speechmesh.clients.config import ClientConfig, ServiceTarget
from speechmesh.clients.mesh import Mesh
from speechmesh.clients.stt import SttClient
from speechmesh.clients.tts import TtsClient
from speechmesh.clients.uploads import AudioSource
from speechmesh.common.limits import CHUNK_BYTES
from speechmesh.convert import ENCODING_BY_FORMAT, ENUM_BY_GENDER
from speechmesh.v1 import audio_pb2, common_pb2, stt_pb2, tts_pb2

# Audio to send: bytes, a file's path (read in chunks), or chunks as they come.
Audio = bytes | str | os.PathLike[str] | Iterable[bytes] | AsyncIterable[bytes]
# Listings answer from memory: a service that has not answered in this long is down.
LISTING_TIMEOUT_SECONDS = 10.0
_CHANNELS = {"mono": 1, "stereo": 2}
T = TypeVar("T")


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            yield chunk


def _source(audio: Audio) -> AudioSource:
    # A str is a path here, never audio (and would iterate as characters).
    return _file_chunks(Path(audio)) if isinstance(audio, str | os.PathLike) else audio


def _choice(values: Mapping[str, T], name: str, value: str) -> T:
    """`values[value]`, or the 400 the gateway answers for a value it does not take."""
    if value not in values:
        raise BadRequestError(f"'{name}' must be one of {', '.join(values)}.", fields={"param": name})
    return values[value]


def _target(address: str | None) -> ServiceTarget | None:
    return None if address is None else ServiceTarget(address=address)


def _synthesis(
    text: str, model: str | None, voice: str | None, format: str, speed: float | None, language: str | None
) -> tts_pb2.SynthesizeRequest:
    return tts_pb2.SynthesizeRequest(
        text=text,
        model=model or "",
        voice=voice or "",
        language=language or "",
        speed=speed or 0.0,  # 0: the service's 1.0
        output=common_pb2.AudioOutputSpec(encoding=_choice(ENCODING_BY_FORMAT, "format", format)),
    )


class AsyncGrpcClient:
    def __init__(
        self,
        *,
        tts: str | None = None,
        stt: str | None = None,
        audio: str | None = None,
        config: ClientConfig | None = None,
    ) -> None:
        """The gRPC target of each service used (`host:port`, `dns:///name:port`, ...), or a
        whole `ClientConfig` (per-model pods, retry attempts, default deadlines)."""
        if config is not None and (tts or stt or audio):
            raise ValueError("Give either the services' addresses or a ClientConfig, not both.")
        self._config = config or ClientConfig(tts=_target(tts), stt=_target(stt), audio=_target(audio))
        self._mesh: Mesh | None = None

    def _opened(self) -> Mesh:
        if self._mesh is None:
            self._mesh = Mesh(self._config)
        return self._mesh

    def _tts(self) -> TtsClient:
        client = self._opened().tts
        if client is None:
            raise ValueError("This client has no TTS service address (tts=...).")
        return client

    def _stt(self) -> SttClient:
        client = self._opened().stt
        if client is None:
            raise ValueError("This client has no STT service address (stt=...).")
        return client

    def _audio(self) -> AudioClient:
        client = self._opened().audio
        if client is None:
            raise ValueError("This client has no audio service address (audio=...).")
        return client

    async def synthesize(
        self,
        text: str,
        *,
        model: str | None = None,
        voice: str | None = None,
        format: str = "mp3",
        speed: float | None = None,
        language: str | None = None,
        timeout: float | None = None,
    ) -> bytes:
        """The whole audio file of `text` spoken (format also `pcm`: 16-bit mono, `opus`, ...)."""
        with api_errors():
            audio, _ = await self._tts().synthesize(_synthesis(text, model, voice, format, speed, language), timeout)
        return audio

    async def stream_synthesis(
        self,
        text: str,
        *,
        model: str | None = None,
        voice: str | None = None,
        format: str = "mp3",
        speed: float | None = None,
        language: str | None = None,
        timeout: float | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """The audio in pieces as each sentence is synthesized; joined they are one file.
        Leaving the loop early cancels the synthesis."""
        request = _synthesis(text, model, voice, format, speed, language)
        with api_errors():
            _, chunks = await self._tts().stream(request, timeout)
            try:
                async for chunk in chunks:
                    yield chunk
            finally:
                await chunks.aclose()

    async def transcribe(
        self,
        audio: Audio,
        *,
        model: str | None = None,
        language: str | None = None,
        timestamps: bool = False,
        diarize: bool = False,
        timeout: float | None = None,
    ) -> Transcript:
        """The text of an audio file (any container FFmpeg reads), as `RestClient.transcribe`."""
        config = stt_pb2.RecognitionConfig(
            model=model or "", language=language or "", word_timestamps=timestamps, diarize=diarize
        )
        with api_errors():
            reply = await self._stt().recognize(config, _source(audio), timeout)
        return results.transcript(reply, timestamps, diarize)

    async def live_recognition(
        self,
        audio: Audio,
        *,
        sample_rate: int = 16_000,
        channels: int = 1,
        model: str | None = None,
        language: str | None = None,
        interim_results: bool = True,
        timestamps: bool = False,
        timeout: float | None = None,
    ) -> AsyncGenerator[LiveResult, None]:
        """Results while raw audio (16-bit little-endian PCM at `sample_rate`, 8-48 kHz) arrives:
        interim ones while an utterance goes on, a final one when it ends. Never replayed
        (its audio is gone), and its deadline covers the whole stream: give a `timeout`
        longer than the default 300 s for longer sessions."""
        config = stt_pb2.StreamingRecognitionConfig(
            config=stt_pb2.RecognitionConfig(model=model or "", language=language or "", word_timestamps=timestamps),
            audio_format=stt_pb2.RawAudioFormat(sample_rate_hertz=sample_rate, channels=channels),
            interim_results=interim_results,
        )
        with api_errors():
            async for reply in self._stt().streaming_recognize(config, _source(audio), timeout):
                yield results.live_result(reply)

    async def models(self, *, timeout: float | None = None) -> list[Model]:
        """Every model of every configured service, with its state (`ready`, `loading`, ...)."""
        with api_errors():
            found = await self._opened().models(timeout or LISTING_TIMEOUT_SECONDS)
        return [results.model(info) for info in found]

    async def voices(
        self,
        *,
        model: str | None = None,
        language: str | None = None,
        gender: str | None = None,
        timeout: float | None = None,
    ) -> list[Voice]:
        query = tts_pb2.ListVoicesRequest(
            model=model or "",
            language=language or "",
            gender=ENUM_BY_GENDER.get(gender or "", common_pb2.GENDER_UNSPECIFIED),
        )
        with api_errors():
            found = await self._tts().voices(query, timeout or LISTING_TIMEOUT_SECONDS)
        return [results.voice(voice) for voice in found]

    async def analyze(self, audio: Audio, *, timeout: float | None = None) -> Analysis:
        """Key, tempo and meter of music."""
        with api_errors():
            reply = await self._audio().analyze(audio_pb2.AnalyzeConfig(), _source(audio), timeout)
        return results.analysis(reply)

    async def convert(
        self,
        audio: Audio,
        format: str,
        *,
        bitrate: int | None = None,
        sample_rate: int | None = None,
        channels: str | None = None,
        timeout: float | None = None,
    ) -> bytes:
        """The audio in another format (mp3, wav, flac, ogg, m4a, aac)."""
        output = common_pb2.AudioOutputSpec(
            encoding=_choice(ENCODING_BY_FORMAT, "format", format),
            bitrate_kbps=bitrate or 0,
            sample_rate_hertz=sample_rate or 0,
            channels=_choice(_CHANNELS, "channels", channels) if channels else 0,
        )
        parts: list[bytes] = []
        with api_errors():
            async for message in self._audio().convert(audio_pb2.ConvertConfig(output=output), _source(audio), timeout):
                if message.HasField("audio_content"):
                    parts.append(message.audio_content)
        return b"".join(parts)

    async def aclose(self) -> None:
        if self._mesh is not None:
            await self._mesh.close()
            self._mesh = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
