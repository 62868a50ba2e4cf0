"""`RestClient` (sync, httpx.Client) and `AsyncRestClient` (httpx.AsyncClient): the public
REST API with an API key, typed results, and errors raised as `speechmesh.client.errors`.

Both have the same methods with the same arguments; what goes on the wire and how answers
are read is `rest_wire`'s. `last_usage` holds the rate-limit and credit headers of the
latest response (errors included); with concurrent calls on one async client it is the
latest to arrive. Network failures (no route, connection refused) are httpx's own errors.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from types import TracebackType
from typing import Any, Self

import httpx

from speechmesh.client import rest_wire as wire
from speechmesh.client.results import Analysis, Model, Transcript, Usage, Voice

# Synthesis of a long text and transcription of a long file take minutes.
DEFAULT_TIMEOUT_SECONDS = 300.0


class RestClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self._http = httpx.Client(base_url=wire.root(base_url), headers=wire.headers(api_key), timeout=timeout)
        self.last_usage: Usage | None = None

    def _checked(self, response: httpx.Response) -> httpx.Response:
        """The response, once its usage is noted; its typed error raised (the body read first)."""
        self.last_usage = wire.usage(response)
        if response.is_error:
            response.read()
            raise wire.error(response)
        return response

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        return self._checked(self._http.request(method, path, **options))

    def synthesize(
        self,
        text: str,
        *,
        model: str | None = None,
        voice: str | None = None,
        format: str = "mp3",
        speed: float | None = None,
        language: str | None = None,
    ) -> bytes:
        """The whole audio file of `text` spoken."""
        body = wire.tts_body(text, model, voice, format, speed, language, stream=False)
        return self._send("POST", wire.TTS, json=body).content

    def stream_synthesis(
        self,
        text: str,
        *,
        model: str | None = None,
        voice: str | None = None,
        format: str = "mp3",
        speed: float | None = None,
        language: str | None = None,
    ) -> Iterator[bytes]:
        """The audio in pieces as each sentence is synthesized; joined they are one file.
        Leaving the loop early closes the connection, which stops the synthesis."""
        body = wire.tts_body(text, model, voice, format, speed, language, stream=True)
        with self._http.stream("POST", wire.TTS, json=body) as response:
            yield from self._checked(response).iter_bytes()

    def transcribe(
        self,
        audio: wire.Audio,
        *,
        model: str | None = None,
        language: str | None = None,
        timestamps: bool = False,
        diarize: bool = False,
    ) -> Transcript:
        """The text of an audio file (any container FFmpeg reads), its segments, and with
        `timestamps` its words' times; with `diarize` each segment's speaker."""
        with wire.upload(audio) as files:
            response = self._send(
                "POST", wire.STT, files=files, data=wire.stt_form(model, language, timestamps, diarize)
            )
        return wire.transcript(response.json())

    def models(self) -> list[Model]:
        return wire.models(self._send("GET", wire.MODELS).json())

    def voices(
        self, *, model: str | None = None, language: str | None = None, gender: str | None = None
    ) -> list[Voice]:
        return wire.voices(self._send("GET", wire.VOICES, params=wire.voices_query(model, language, gender)).json())

    def analyze(self, audio: wire.Audio) -> Analysis:
        """Key, tempo and meter of music (free)."""
        with wire.upload(audio) as files:
            return wire.analysis(self._send("POST", wire.ANALYZE, files=files).json())

    def convert(
        self,
        audio: wire.Audio,
        format: str,
        *,
        bitrate: int | None = None,
        sample_rate: int | None = None,
        channels: str | None = None,
    ) -> bytes:
        """The audio in another format (mp3, wav, flac, ogg, m4a, aac; free)."""
        with wire.upload(audio) as files:
            data = wire.convert_form(format, bitrate, sample_rate, channels)
            return self._send("POST", wire.CONVERT, files=files, data=data).content

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class AsyncRestClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self._http = httpx.AsyncClient(base_url=wire.root(base_url), headers=wire.headers(api_key), timeout=timeout)
        self.last_usage: Usage | None = None

    async def _checked(self, response: httpx.Response) -> httpx.Response:
        """The response, once its usage is noted; its typed error raised (the body read first)."""
        self.last_usage = wire.usage(response)
        if response.is_error:
            await response.aread()
            raise wire.error(response)
        return response

    async def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        return await self._checked(await self._http.request(method, path, **options))

    async def synthesize(
        self,
        text: str,
        *,
        model: str | None = None,
        voice: str | None = None,
        format: str = "mp3",
        speed: float | None = None,
        language: str | None = None,
    ) -> bytes:
        """The whole audio file of `text` spoken."""
        body = wire.tts_body(text, model, voice, format, speed, language, stream=False)
        return (await self._send("POST", wire.TTS, json=body)).content

    async def stream_synthesis(
        self,
        text: str,
        *,
        model: str | None = None,
        voice: str | None = None,
        format: str = "mp3",
        speed: float | None = None,
        language: str | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """The audio in pieces as each sentence is synthesized; joined they are one file.
        Leaving the loop early closes the connection, which stops the synthesis."""
        body = wire.tts_body(text, model, voice, format, speed, language, stream=True)
        async with self._http.stream("POST", wire.TTS, json=body) as response:
            async for chunk in (await self._checked(response)).aiter_bytes():
                yield chunk

    async def transcribe(
        self,
        audio: wire.Audio,
        *,
        model: str | None = None,
        language: str | None = None,
        timestamps: bool = False,
        diarize: bool = False,
    ) -> Transcript:
        """The text of an audio file (any container FFmpeg reads), its segments, and with
        `timestamps` its words' times; with `diarize` each segment's speaker."""
        with wire.upload(audio) as files:
            data = wire.stt_form(model, language, timestamps, diarize)
            response = await self._send("POST", wire.STT, files=files, data=data)
        return wire.transcript(response.json())

    async def models(self) -> list[Model]:
        return wire.models((await self._send("GET", wire.MODELS)).json())

    async def voices(
        self, *, model: str | None = None, language: str | None = None, gender: str | None = None
    ) -> list[Voice]:
        response = await self._send("GET", wire.VOICES, params=wire.voices_query(model, language, gender))
        return wire.voices(response.json())

    async def analyze(self, audio: wire.Audio) -> Analysis:
        """Key, tempo and meter of music (free)."""
        with wire.upload(audio) as files:
            return wire.analysis((await self._send("POST", wire.ANALYZE, files=files)).json())

    async def convert(
        self,
        audio: wire.Audio,
        format: str,
        *,
        bitrate: int | None = None,
        sample_rate: int | None = None,
        channels: str | None = None,
    ) -> bytes:
        """The audio in another format (mp3, wav, flac, ogg, m4a, aac; free)."""
        with wire.upload(audio) as files:
            data = wire.convert_form(format, bitrate, sample_rate, channels)
            return (await self._send("POST", wire.CONVERT, files=files, data=data)).content

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
