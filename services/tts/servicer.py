"""TextToSpeech servicer: maps proto requests to the synthesis pipeline and back."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator

import grpc

from services.tts import aliases, language
from services.tts.clone_pipeline import clone_speech
from services.tts.engine_set import TtsEngines
from services.tts.pipeline import EncodedSynthesis, plan_synthesis, validate_text
from services.tts.synthesizer import VoiceCard
from speechmesh.common import limits
from speechmesh.common.chunks import chunked
from speechmesh.common.errors import InvalidArgument
from speechmesh.convert import ENUM_BY_GENDER, GENDER_BY_ENUM, audio_metadata, output_spec
from speechmesh.runtime import metrics
from speechmesh.runtime.blocking import Blocking
from speechmesh.runtime.refusals import refusing
from speechmesh.runtime.uploads import read_audio
from speechmesh.v1 import tts_pb2, tts_pb2_grpc


def _voice(card: VoiceCard, alias_of: str = "") -> tts_pb2.Voice:
    return tts_pb2.Voice(
        id=card.id,
        name=card.name,
        model=card.model,
        language=card.language,
        locale=card.locale,
        gender=ENUM_BY_GENDER[card.gender],
        sample_rate_hertz=card.sample_rate,
        alias_of=alias_of,
    )


def _matches(card: VoiceCard, request: tts_pb2.ListVoicesRequest) -> bool:
    if request.model and card.model != request.model:
        return False
    wanted = request.language.lower().replace("_", "-")
    # A language matches every voice that speaks it; a locale only the voices of that locale.
    if wanted and not (card.speaks(wanted) or wanted == card.locale.lower()):
        return False
    return not request.gender or card.gender == GENDER_BY_ENUM.get(request.gender)


class TextToSpeechServicer(tts_pb2_grpc.TextToSpeechServicer):
    def __init__(self, engines: TtsEngines, blocking: Blocking, clone_reference_seconds: float) -> None:
        """`clone_reference_seconds`: how much of a clone reference is used (its start)."""
        self._engines = engines
        self._blocking = blocking
        self._clone_reference_seconds = clone_reference_seconds
        # Off the event loop and beside model loading: the language model takes ~0.5 s.
        threading.Thread(target=language.warm_up, name="language-warm-up", daemon=True).start()

    async def ListVoices(
        self, request: tts_pb2.ListVoicesRequest, context: grpc.aio.ServicerContext
    ) -> tts_pb2.ListVoicesResponse:
        engines = self._engines.synthesizers.engines()
        cards = [(card, "") for engine in engines.values() for card in engine.voices()]
        cards += [(alias, stand_in.id) for alias, stand_in in aliases.listed(engines)]
        return tts_pb2.ListVoicesResponse(
            voices=[_voice(card, alias_of) for card, alias_of in cards if _matches(card, request)]
        )

    def Synthesize(
        self, request: tts_pb2.SynthesizeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tts_pb2.SynthesizeResponse]:
        return self._synthesize(request, stream=False)

    def SynthesizeStream(
        self, request: tts_pb2.SynthesizeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tts_pb2.SynthesizeResponse]:
        return self._synthesize(request, stream=True)

    @refusing
    async def Clone(
        self, request_iterator: AsyncIterator[tts_pb2.CloneRequest], context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[tts_pb2.SynthesizeResponse, None]:
        # `refusing`: a refusal (an unknown or unavailable cloner) reads the rest of the
        # reference first, or the caller may see gRPC's INTERNAL instead (grpc/grpc#36066).
        messages = aiter(request_iterator)
        first = await anext(messages, None)
        if first is None or not first.HasField("config"):
            raise InvalidArgument("The first Clone message must carry the config.")
        config = first.config
        validate_text(config.text)
        output = output_spec(config.output, default="mp3")
        model, cloner = self._engines.cloner(config.model)
        async with self._blocking.admit(model):
            with await read_audio(messages, limits.CLONE_REFERENCE_MAX_BYTES, "reference_audio") as reference:
                clone = await self._blocking.run(
                    clone_speech, cloner, reference, config.text, config.language, output, self._clone_reference_seconds
                )
        for chunk in chunked(clone.audio):
            yield tts_pb2.SynthesizeResponse(audio_content=chunk)
        result = clone.result
        yield tts_pb2.SynthesizeResponse(
            result=tts_pb2.SynthesisResult(
                audio=audio_metadata(output.format, clone.sample_rate, output.channels, result.pcm.duration_seconds),
                model=model,
                voice=result.base_voice,
                language=result.language,
                characters=len(config.text),
                speaker_similarity=result.similarity,
                base_similarity=result.base_similarity,
            )
        )

    async def _synthesize(
        self, request: tts_pb2.SynthesizeRequest, *, stream: bool
    ) -> AsyncIterator[tts_pb2.SynthesizeResponse]:
        output = output_spec(request.output, default="mp3")
        plan = plan_synthesis(
            self._engines.synthesizers,
            text=request.text,
            model=request.model,
            voice=request.voice,
            language=request.language,
            speed=request.speed,
        )
        first_piece = self._engines.first_piece(plan.model) if stream else None
        synthesis = EncodedSynthesis(plan, output, first_piece=first_piece)
        # Admitted before the plan leaves, so a refusal is the call's only answer.
        async with self._blocking.admit(plan.model):
            started = time.perf_counter()
            planned = tts_pb2.SynthesizeResponse(
                plan=tts_pb2.SynthesisPlan(model=plan.model, voice=plan.voice.id, language=plan.language)
            )
            # A stream names its voice before its audio (the gateway's headers wait for it). A
            # whole file says nothing until it is encoded: a replica that dies while it
            # synthesizes has answered nothing, so Envoy or the client's retry policy can
            # replay the call on another (both replay only calls with no answer yet).
            planned_sent = stream
            if stream:
                yield planned
            # Closed with this generator (a caller who left): the pool stops pulling pieces.
            async with contextlib.aclosing(self._blocking.iterate(iter(synthesis))) as chunks:
                async for chunk in chunks:
                    if not planned_sent:
                        planned_sent = True
                        yield planned
                    yield tts_pb2.SynthesizeResponse(audio_content=chunk)
        encoder = synthesis.encoder
        metrics.observe_real_time_factor("tts", plan.model, time.perf_counter() - started, encoder.duration_seconds)
        yield tts_pb2.SynthesizeResponse(
            result=tts_pb2.SynthesisResult(
                audio=audio_metadata(output.format, encoder.sample_rate, encoder.channels, encoder.duration_seconds),
                model=plan.model,
                voice=plan.voice.id,
                language=plan.language,
                characters=len(request.text),
            )
        )
