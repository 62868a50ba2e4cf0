"""Audio servicer: validates each config, runs its pipeline in the thread pool, and sends
the results once they are complete (a file is never half-sent: `output.py`)."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import IO, Any, TypeVar

import grpc

from services.audio import pipeline
from services.audio.engine_set import AudioEngines
from services.audio.output import Produced
from services.audio.pipeline import Bounds, Delivery, EnhanceOptions, Result, Voice
from services.audio.registry import NO_WEIGHTS
from services.audio.settings import AudioSettings
from services.audio.voices import TargetVoices
from speechmesh.common import limits
from speechmesh.common.errors import InvalidArgument, ModelUnavailable
from speechmesh.convert import audio_metadata, output_spec
from speechmesh.runtime.blocking import Blocking
from speechmesh.runtime.refusals import refusing, refusing_unary
from speechmesh.runtime.uploads import read_audio
from speechmesh.v1 import audio_pb2, audio_pb2_grpc, common_pb2

T = TypeVar("T")

_KINDS = {audio_pb2.ECHO: "echo", audio_pb2.REVERB: "reverb", audio_pb2.DEREVERB_TYPE_UNSPECIFIED: "both"}
EMOTIONS = {
    audio_pb2.EMOTION_UNSPECIFIED: "neutral",
    audio_pb2.EMOTION_NEUTRAL: "neutral",
    audio_pb2.EMOTION_HAPPY: "happy",
    audio_pb2.EMOTION_SAD: "sad",
    audio_pb2.EMOTION_ANGRY: "angry",
    audio_pb2.EMOTION_EXCITED: "excited",
}
STEM_COUNTS = (2, 4, 5, 6)


def _level(value: int, default: int, high: int, param: str) -> int:
    """A 1..high setting where 0 means `default`."""
    if value == 0:
        return default
    if not 1 <= value <= high:
        raise InvalidArgument(f"'{param}' must be a whole number from 1 to {high}.", param=param)
    return value


def _delivery(message: common_pb2.AudioOutputSpec, default: str) -> Delivery:
    if not message.encoding:
        return Delivery(None, default)
    spec = output_spec(message, default="wav")
    # 0 channels keeps the input's (output_spec reads 0 as mono, TTS's default).
    return Delivery(spec.__class__(spec.format, spec.sample_rate, message.channels, spec.bitrate_kbps), default)


class AudioServicer(audio_pb2_grpc.AudioServicer):
    def __init__(self, engines: AudioEngines, blocking: Blocking, settings: AudioSettings) -> None:
        self._engines = engines
        self._blocking = blocking
        self._settings = settings
        self._voices = TargetVoices(
            settings.tts_address,
            settings.tts_routes,
            settings.tts_timeout_seconds,
            settings.voice_profiles,
            blocking,
        )

    def _bounds(self, max_seconds: float, service_max: float) -> Bounds:
        """The service's bound, tightened to the caller's budget when it asks for less."""
        if not math.isfinite(max_seconds) or max_seconds < 0:
            raise InvalidArgument("'max_seconds' must be a finite number of seconds, 0 or more.", param="max_seconds")
        seconds = max_seconds if 0 < max_seconds < service_max else service_max
        return Bounds(seconds, self._settings.segment_seconds, self._settings.overlap_seconds)

    async def _config(self, messages: AsyncIterator[Any], field: str) -> Any:
        first = await anext(messages, None)
        if first is None or not first.HasField("config"):
            raise InvalidArgument(f"The first {field} message must carry the config.")
        return first.config

    async def _process(
        self, messages: AsyncIterator[Any], limit: int, model: str, work: Callable[..., T], *args: object
    ) -> T:
        async with self._blocking.admit(model):
            with await read_audio(messages, limit, "file") as upload:
                return await self._blocking.run(work, upload, *args)

    async def _answer(
        self, messages: AsyncIterator[Any], limit: int, model: str, work: Callable[..., Result], *args: object
    ) -> AsyncIterator[audio_pb2.ProcessedAudio]:
        """The upload through `work(upload, *args)`, its one result sent in chunks."""
        for message in _sent(await self._process(messages, limit, model or "convert", work, *args), model):
            yield message

    async def _voice(self, upload: IO[bytes], voice: str, model: str) -> Voice:
        """The conversion of `upload` toward TTS voice `voice`. Its speaker is measured
        first, so a bad upload is refused before the target voice is (seconds of TTS)."""
        model, converter = self._engines.converters.get(model)
        speaker = await self._blocking.run(pipeline.speaker, upload, converter)
        return Voice(converter, speaker, await self._voices.profile(voice, model, converter))

    @refusing
    async def Enhance(
        self, request_iterator: AsyncIterator[audio_pb2.EnhanceRequest], context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[audio_pb2.ProcessedAudio, None]:
        messages = aiter(request_iterator)
        config = await self._config(messages, "Enhance")
        if config.super_resolution:
            raise InvalidArgument(
                "'super_resolution' is not available on this server: it has no bandwidth-extension model.",
                param="super_resolution",
            )
        options = EnhanceOptions(
            denoise=config.denoise if config.HasField("denoise") else True,
            clarity=config.enhance_clarity if config.HasField("enhance_clarity") else True,
            strength=_level(config.strength, 2, 3, "strength"),
        )
        if not options.denoise and not options.clarity:
            raise InvalidArgument("Nothing to do: set 'denoise' or 'enhance_clarity' (or both) to true.")
        model, denoiser = self._engines.denoisers.get(config.model) if options.denoise else ("", None)
        delivery = _delivery(config.output, "input")
        bounds = self._bounds(config.max_seconds, self._settings.max_audio_seconds)
        work = (pipeline.enhance, denoiser, options, delivery, bounds)
        async for message in self._answer(messages, limits.AUDIO_UPLOAD_MAX_BYTES, model or "clarity", *work):
            yield message

    @refusing
    async def Dereverb(
        self, request_iterator: AsyncIterator[audio_pb2.DereverbRequest], context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[audio_pb2.ProcessedAudio, None]:
        messages = aiter(request_iterator)
        config = await self._config(messages, "Dereverb")
        if config.type not in _KINDS:
            raise InvalidArgument("'type' must be echo or reverb (or unset for both).", param="type")
        intensity = _level(config.intensity, 3, 5, "intensity")
        model, engine = self._engines.dereverberators.get("")
        delivery = _delivery(config.output, "input")
        bounds = self._bounds(config.max_seconds, self._settings.max_audio_seconds)
        work = (pipeline.dereverb, engine, _KINDS[config.type], intensity, delivery, bounds)
        async for message in self._answer(messages, limits.AUDIO_UPLOAD_MAX_BYTES, model, *work):
            yield message

    @refusing
    async def Separate(
        self, request_iterator: AsyncIterator[audio_pb2.SeparateRequest], context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[audio_pb2.SeparateResponse, None]:
        messages = aiter(request_iterator)
        config = await self._config(messages, "Separate")
        stems = config.stems or 2
        if stems not in STEM_COUNTS:
            raise InvalidArgument("'stems' must be 2, 4, 5 or 6.", param="stems")
        model, engine = self._engines.separators.get(config.model)
        if stems not in engine.stem_counts:
            counts = ", ".join(str(count) for count in engine.stem_counts)
            raise InvalidArgument(f"Model '{model}' separates into {counts} stems, not {stems}.", param="stems")
        delivery = _delivery(config.output, "wav")
        bounds = self._bounds(config.max_seconds, self._settings.max_audio_seconds)
        result = await self._process(
            messages, limits.AUDIO_UPLOAD_MAX_BYTES, model, pipeline.separate, engine, stems, delivery, bounds
        )
        try:
            for produced in result.outputs:
                for message in _messages(produced, _report(result, model)):
                    yield audio_pb2.SeparateResponse(stem=produced.name, audio=message)
        finally:
            result.close()

    @refusing_unary
    async def Analyze(
        self, request_iterator: AsyncIterator[audio_pb2.AnalyzeRequest], context: grpc.aio.ServicerContext
    ) -> audio_pb2.AnalyzeResponse:
        messages = aiter(request_iterator)
        await self._config(messages, "Analyze")
        model, analyzer = self._engines.analyzers.get("")
        analysis, seconds = await self._process(
            messages, limits.AUDIO_UPLOAD_MAX_BYTES, model, pipeline.analyze, analyzer
        )
        return audio_pb2.AnalyzeResponse(
            key=analysis.key,
            scale=analysis.scale,
            bpm=analysis.bpm,
            time_signature=analysis.time_signature,
            camelot=analysis.camelot,
            compatible_keys=analysis.compatible_keys,
            duration_ms=round(seconds * 1000),
        )

    @refusing
    async def Convert(
        self, request_iterator: AsyncIterator[audio_pb2.ConvertRequest], context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[audio_pb2.ProcessedAudio, None]:
        messages = aiter(request_iterator)
        config = await self._config(messages, "Convert")
        if not config.output.encoding:
            raise InvalidArgument("'format' is required: the format to convert to.", param="format")
        delivery = _delivery(config.output, "wav")
        if delivery.output is not None and delivery.output.format.name == "ogg" and config.output.channels == 1:
            raise InvalidArgument(
                "Ogg output is Vorbis, which this server encodes in stereo only: ask for stereo or another format.",
                param="channels",
            )
        bounds = self._bounds(0, self._settings.max_audio_seconds)
        async for message in self._answer(
            messages, limits.AUDIO_UPLOAD_MAX_BYTES, "", pipeline.convert, delivery, bounds
        ):
            yield message

    @refusing
    async def VoiceConvert(
        self, request_iterator: AsyncIterator[audio_pb2.VoiceConvertRequest], context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[audio_pb2.ProcessedAudio, None]:
        messages = aiter(request_iterator)
        config = await self._config(messages, "VoiceConvert")
        if not config.target_voice:
            raise InvalidArgument("'target_voice' is required: a voice id from /v1/voices/.", param="target_voice")
        model, _ = self._engines.converters.get(config.model)
        delivery = _delivery(config.output, "wav")
        bounds = self._bounds(config.max_seconds, self._settings.max_speech_seconds)
        async with self._blocking.admit(model):
            with await read_audio(messages, limits.SPEECH_UPLOAD_MAX_BYTES, "file") as upload:
                voice = await self._voice(upload, config.target_voice, model)
                result = await self._blocking.run(pipeline.voice_convert, upload, voice, delivery, bounds)
        for message in _sent(result, model):
            yield message

    @refusing
    async def SpeechToSpeech(
        self, request_iterator: AsyncIterator[audio_pb2.SpeechToSpeechRequest], context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[audio_pb2.ProcessedAudio, None]:
        messages = aiter(request_iterator)
        config = await self._config(messages, "SpeechToSpeech")
        if config.emotion not in EMOTIONS:
            raise InvalidArgument("'emotion' must be neutral, happy, sad, angry or excited.", param="emotion")
        speed = config.speed or limits.SPEED_DEFAULT
        if not limits.SPEED_MIN <= speed <= limits.SPEED_MAX:
            raise InvalidArgument(f"'speed' must be from {limits.SPEED_MIN} to {limits.SPEED_MAX}.", param="speed")
        # The page's speech-to-speech models: openvoice is a voice converter and answers as
        # the converters do; chatterbox is the TTS service's model (its catalog lists it).
        if config.model in ("openvoice", "knn-vc"):
            self._engines.converters.get(config.model)
        if config.model == "chatterbox":
            raise ModelUnavailable(
                f"Model 'chatterbox' is not available on this server. {NO_WEIGHTS}", model="chatterbox"
            )
        model, restyler = self._engines.restylers.get(config.model)
        delivery = _delivery(config.output, "input")
        bounds = self._bounds(config.max_seconds, self._settings.max_speech_seconds)
        emotion = EMOTIONS[config.emotion]
        async with self._blocking.admit(model):
            with await read_audio(messages, limits.SPEECH_UPLOAD_MAX_BYTES, "file") as upload:
                voice = await self._voice(upload, config.voice, "") if config.voice else None
                work = (pipeline.restyle, upload, restyler, emotion, speed, voice, delivery, bounds)
                result = await self._blocking.run(*work)
        for message in _sent(result, model):
            yield message


def _report(result: Result, model: str) -> audio_pb2.ProcessingReport:
    return audio_pb2.ProcessingReport(
        model=model,
        input_duration_ms=round(result.input_seconds * 1000),
        similarity_before=result.similarity_before,
        similarity_after=result.similarity_after,
    )


def _messages(produced: Produced, report: audio_pb2.ProcessingReport) -> Iterator[audio_pb2.ProcessedAudio]:
    for chunk in produced.chunks():
        yield audio_pb2.ProcessedAudio(audio_content=chunk)
    metadata = audio_metadata(produced.format, produced.sample_rate, produced.channels, produced.duration_seconds)
    yield audio_pb2.ProcessedAudio(metadata=metadata, report=report)


def _sent(result: Result, model: str) -> Iterator[audio_pb2.ProcessedAudio]:
    """The messages of a one-file result; its spools are deleted once sent or abandoned."""
    try:
        yield from _messages(result.outputs[0], _report(result, model))
    finally:
        result.close()
