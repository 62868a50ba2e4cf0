"""SpeechToText servicer: maps proto requests to the recognition pipeline and back."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import grpc

from services.stt.engine_set import SttEngines
from services.stt.live import LiveResult, LiveTranscriber
from services.stt.pipeline import FileBounds, RecognitionRequest, transcribe_file
from services.stt.recognizer import SAMPLE_RATE, RecognitionOptions, Transcript, Word
from services.stt.registry import ALIASES
from services.stt.settings import SttSettings
from speechmesh.common import limits
from speechmesh.common.audio.resample import PcmStreamResampler
from speechmesh.common.errors import InvalidArgument
from speechmesh.runtime import metrics
from speechmesh.runtime.blocking import Blocking
from speechmesh.runtime.refusals import refusing_unary
from speechmesh.runtime.uploads import read_audio
from speechmesh.v1 import common_pb2, stt_pb2, stt_pb2_grpc


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _request(config: stt_pb2.RecognitionConfig) -> RecognitionRequest:
    # "en-US" and "en_us" name the language Whisper calls "en".
    language = config.language.strip().lower().replace("_", "-").split("-")[0]
    request = RecognitionRequest(
        options=RecognitionOptions(
            language="" if language == "auto" else language,
            task="translate" if config.task == stt_pb2.TRANSLATE else "transcribe",
            word_timestamps=config.word_timestamps,
            vad_filter=config.vad_filter if config.HasField("vad_filter") else True,
            prompt=config.prompt,
            temperature=config.temperature,
        ),
        diarize=config.diarize,
        min_speakers=config.min_speakers,
        max_speakers=config.max_speakers,
    )
    request.validate()
    return request


def _words(words: tuple[Word, ...] | list[Word]) -> list[common_pb2.Word]:
    return [
        common_pb2.Word(
            word=word.text.strip(),
            start_ms=_ms(word.start),
            end_ms=_ms(word.end),
            probability=word.probability,
            speaker=word.speaker,
        )
        for word in words
    ]


def _response(model: str, transcript: Transcript, language_given: bool) -> stt_pb2.RecognizeResponse:
    return stt_pb2.RecognizeResponse(
        text=transcript.text,
        language=transcript.language,
        language_probability=1.0 if language_given else transcript.language_probability,
        duration_ms=_ms(transcript.duration),
        model=model,
        segments=[
            stt_pb2.Segment(
                start_ms=_ms(segment.start),
                end_ms=_ms(segment.end),
                text=segment.text,
                speaker=segment.speaker,
                words=_words(segment.words),
                avg_logprob=segment.avg_logprob,
                compression_ratio=segment.compression_ratio,
                no_speech_prob=segment.no_speech_prob,
                temperature=segment.temperature,
                tokens=segment.tokens,
                language=segment.language or transcript.language,
            )
            for segment in transcript.segments
        ],
    )


def _live(result: LiveResult) -> stt_pb2.StreamingRecognizeResponse:
    return stt_pb2.StreamingRecognizeResponse(
        text=result.text,
        is_final=result.is_final,
        start_ms=_ms(result.start),
        end_ms=_ms(result.end),
        language=result.language,
        words=_words(result.words),
    )


class SpeechToTextServicer(stt_pb2_grpc.SpeechToTextServicer):
    def __init__(self, engines: SttEngines, blocking: Blocking, settings: SttSettings) -> None:
        self._engines = engines
        self._blocking = blocking
        self._streaming = settings.streaming
        self._bounds = FileBounds(settings.max_audio_seconds, settings.window_seconds)

    @refusing_unary
    async def Recognize(
        self, request_iterator: AsyncIterator[stt_pb2.RecognizeRequest], context: grpc.aio.ServicerContext
    ) -> stt_pb2.RecognizeResponse:
        messages = aiter(request_iterator)
        first = await anext(messages, None)
        if first is None or not first.HasField("config"):
            raise InvalidArgument("The first Recognize message must carry the config.")
        request = _request(first.config)
        bounds = self._bounds_for(first.config.max_seconds)
        model, recognizer = self._engines.recognizers.get(ALIASES.get(first.config.model, first.config.model))
        diarizer = self._engines.diarizer() if request.diarize else None
        async with self._blocking.admit(model):
            started = time.perf_counter()
            with await read_audio(messages, limits.STT_UPLOAD_MAX_BYTES, "file") as upload:
                transcript = await self._blocking.run(transcribe_file, recognizer, diarizer, upload, request, bounds)
        metrics.observe_real_time_factor("stt", model, time.perf_counter() - started, transcript.duration)
        return _response(model, transcript, language_given=bool(request.options.language))

    def _bounds_for(self, max_seconds: float) -> FileBounds:
        """The service's bounds, tightened to the caller's budget when it asks for less."""
        if not math.isfinite(max_seconds) or max_seconds < 0:
            raise InvalidArgument("'max_seconds' must be a finite number of seconds, 0 or more.", param="max_seconds")
        if 0 < max_seconds < self._bounds.max_seconds:
            return replace(self._bounds, max_seconds=max_seconds)
        return self._bounds

    async def StreamingRecognize(
        self, request_iterator: AsyncIterator[stt_pb2.StreamingRecognizeRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[stt_pb2.StreamingRecognizeResponse]:
        messages = aiter(request_iterator)
        first = await anext(messages, None)
        if first is None or not first.HasField("streaming_config"):
            raise InvalidArgument("The first StreamingRecognize message must carry the streaming config.")
        config = first.streaming_config
        if config.config.diarize:
            raise InvalidArgument("Diarization is not available on live streams; use Recognize.", param="diarize")
        request = _request(config.config)
        _, recognizer = self._engines.recognizers.get(ALIASES.get(config.config.model, config.config.model))
        rate = config.audio_format.sample_rate_hertz or SAMPLE_RATE
        channels = config.audio_format.channels or 1
        if not limits.SAMPLE_RATE_MIN_HERTZ <= rate <= limits.SAMPLE_RATE_MAX_HERTZ:
            raise InvalidArgument(f"Sample rate {rate} Hz is outside 8000-48000.", param="sample_rate_hertz")
        if channels not in (1, 2):
            raise InvalidArgument("Audio must have 1 or 2 channels.", param="channels")
        resampler = PcmStreamResampler(rate, channels, SAMPLE_RATE)
        live = LiveTranscriber(
            recognizer, self._engines.detector(), request.options, self._streaming, config.interim_results
        )
        async for message in messages:
            if not message.HasField("audio_content"):
                raise InvalidArgument("Only the first message may carry the streaming config.")
            if len(message.audio_content) > limits.CHUNK_BYTES:
                raise InvalidArgument("An audio message carries at most 1 MiB.", param="audio_content")
            for result in await self._blocking.run(live.feed, resampler.feed(message.audio_content)):
                yield _live(result)
        for result in await self._blocking.run(lambda: live.feed(resampler.flush()) + live.finish()):
            yield _live(result)
