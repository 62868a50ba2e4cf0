"""The chat service as a gRPC server: its spec and `create_server(settings, engines)`."""

from __future__ import annotations

import functools

import grpc
from opentelemetry.trace import TracerProvider

from services.chat.engine_set import ChatEngines
from services.chat.servicer import ChatServicer
from services.chat.settings import ChatSettings
from services.chat.speech_translate import SpeechTranslator, TranslateLimits
from services.chat.translators import Translators
from services.chat.upstream import Upstream
from services.chat.voice_chat import TurnLimits, VoiceChat
from services.chat.voices import VoiceChooser
from speechmesh.clients.config import ServiceTarget
from speechmesh.runtime import server as runtime
from speechmesh.runtime.blocking import Blocking
from speechmesh.v1 import chat_pb2, chat_pb2_grpc


def _target(address: str, settings: ChatSettings, routes: dict[str, str] | None = None) -> ServiceTarget | None:
    if not address:
        return None
    return ServiceTarget(address=address, models=routes or {}, timeout_seconds=settings.upstream_timeout_seconds)


def _add_servicers(settings: ChatSettings, server: grpc.aio.Server, engines: ChatEngines, blocking: Blocking) -> None:
    upstream = Upstream(
        _target(settings.stt_address, settings), _target(settings.tts_address, settings, settings.tts_routes)
    )
    translators = Translators(engines.translators)
    voices = VoiceChooser(upstream, settings.default_voice, settings.default_tts_model, settings.voice_preference)
    voice_chat = VoiceChat(
        engines.language_models,
        translators,
        voices,
        upstream,
        blocking,
        # Replies beyond the model's slots would only wait in llama.cpp's own queue.
        Blocking(settings.parallel),
        TurnLimits(settings.reply_tokens, settings.max_speech_seconds, settings.stt_model, settings.english_stt_model),
    )
    translator = SpeechTranslator(
        translators,
        voices,
        upstream,
        blocking,
        engines.voice_meters,
        TranslateLimits(settings.max_translate_seconds, settings.stt_model),
    )
    chat_pb2_grpc.add_ChatServicer_to_server(ChatServicer(voice_chat, translator, blocking), server)


def spec(settings: ChatSettings) -> runtime.ServiceSpec:
    return runtime.ServiceSpec(
        name="chat",
        service_names=(chat_pb2.DESCRIPTOR.services_by_name["Chat"].full_name,),
        add_servicers=functools.partial(_add_servicers, settings),
    )


async def create_server(
    settings: ChatSettings, engines: ChatEngines, tracer_provider: TracerProvider | None = None
) -> tuple[grpc.aio.Server, int]:
    return await runtime.create_server(spec(settings), settings, engines, tracer_provider)
