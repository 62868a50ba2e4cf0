"""`GrpcClient`: `AsyncGrpcClient` for callers without an event loop, run on a private loop thread.

Chosen over grpc's sync stubs so that routing to per-model pods, deadlines, the channel's
retry policy and the error mapping exist once, in the async client and `speechmesh.clients`
below it. Live recognition stays async-only: its audio arrives while results go out, which
a blocking iterator cannot do without a thread of its own per stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Self

from speechmesh.client.grpc_async import AsyncGrpcClient, Audio
from speechmesh.client.loop_thread import LoopThread
from speechmesh.client.results import Analysis, Model, Transcript, Voice
from speechmesh.clients.config import ClientConfig


class GrpcClient:
    def __init__(
        self,
        *,
        tts: str | None = None,
        stt: str | None = None,
        audio: str | None = None,
        config: ClientConfig | None = None,
    ) -> None:
        """As `AsyncGrpcClient`. An async iterable `audio` is consumed on the private loop."""
        self._async = AsyncGrpcClient(tts=tts, stt=stt, audio=audio, config=config)
        self._loop = LoopThread()

    def synthesize(
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
        return self._loop.run(
            self._async.synthesize(
                text, model=model, voice=voice, format=format, speed=speed, language=language, timeout=timeout
            )
        )

    def stream_synthesis(
        self,
        text: str,
        *,
        model: str | None = None,
        voice: str | None = None,
        format: str = "mp3",
        speed: float | None = None,
        language: str | None = None,
        timeout: float | None = None,
    ) -> Iterator[bytes]:
        return self._loop.iterate(
            self._async.stream_synthesis(
                text, model=model, voice=voice, format=format, speed=speed, language=language, timeout=timeout
            )
        )

    def transcribe(
        self,
        audio: Audio,
        *,
        model: str | None = None,
        language: str | None = None,
        timestamps: bool = False,
        diarize: bool = False,
        timeout: float | None = None,
    ) -> Transcript:
        return self._loop.run(
            self._async.transcribe(
                audio, model=model, language=language, timestamps=timestamps, diarize=diarize, timeout=timeout
            )
        )

    def models(self, *, timeout: float | None = None) -> list[Model]:
        return self._loop.run(self._async.models(timeout=timeout))

    def voices(
        self,
        *,
        model: str | None = None,
        language: str | None = None,
        gender: str | None = None,
        timeout: float | None = None,
    ) -> list[Voice]:
        return self._loop.run(self._async.voices(model=model, language=language, gender=gender, timeout=timeout))

    def analyze(self, audio: Audio, *, timeout: float | None = None) -> Analysis:
        return self._loop.run(self._async.analyze(audio, timeout=timeout))

    def convert(
        self,
        audio: Audio,
        format: str,
        *,
        bitrate: int | None = None,
        sample_rate: int | None = None,
        channels: str | None = None,
        timeout: float | None = None,
    ) -> bytes:
        return self._loop.run(
            self._async.convert(
                audio, format, bitrate=bitrate, sample_rate=sample_rate, channels=channels, timeout=timeout
            )
        )

    def close(self) -> None:
        self._loop.run(self._async.aclose())
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
