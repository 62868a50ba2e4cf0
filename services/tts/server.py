"""The TTS service as a gRPC server: its spec and `create_server(settings, engines)`."""

from __future__ import annotations

import functools
from typing import Any

import grpc
from opentelemetry.trace import TracerProvider

from services.tts.servicer import TextToSpeechServicer
from services.tts.settings import TtsSettings
from speechmesh.runtime import server as runtime
from speechmesh.runtime.blocking import Blocking
from speechmesh.v1 import tts_pb2, tts_pb2_grpc


def _add_servicers(settings: TtsSettings, server: grpc.aio.Server, engines: Any, blocking: Blocking) -> None:
    servicer = TextToSpeechServicer(engines, blocking, settings.clone_reference_max_seconds)
    tts_pb2_grpc.add_TextToSpeechServicer_to_server(servicer, server)


def spec(settings: TtsSettings) -> runtime.ServiceSpec:
    return runtime.ServiceSpec(
        name="tts",
        service_names=(tts_pb2.DESCRIPTOR.services_by_name["TextToSpeech"].full_name,),
        add_servicers=functools.partial(_add_servicers, settings),
    )


async def create_server(
    settings: TtsSettings, engines: runtime.EngineSet, tracer_provider: TracerProvider | None = None
) -> tuple[grpc.aio.Server, int]:
    return await runtime.create_server(spec(settings), settings, engines, tracer_provider)
