"""The audio service as a gRPC server: its spec and `create_server(settings, engines)`."""

from __future__ import annotations

import functools

import grpc
from opentelemetry.trace import TracerProvider

from services.audio.engine_set import AudioEngines
from services.audio.servicer import AudioServicer
from services.audio.settings import AudioSettings
from speechmesh.runtime import server as runtime
from speechmesh.runtime.blocking import Blocking
from speechmesh.v1 import audio_pb2, audio_pb2_grpc


def _add_servicers(settings: AudioSettings, server: grpc.aio.Server, engines: AudioEngines, blocking: Blocking) -> None:
    audio_pb2_grpc.add_AudioServicer_to_server(AudioServicer(engines, blocking, settings), server)


def spec(settings: AudioSettings) -> runtime.ServiceSpec:
    return runtime.ServiceSpec(
        name="audio",
        service_names=(audio_pb2.DESCRIPTOR.services_by_name["Audio"].full_name,),
        add_servicers=functools.partial(_add_servicers, settings),
    )


async def create_server(
    settings: AudioSettings, engines: AudioEngines, tracer_provider: TracerProvider | None = None
) -> tuple[grpc.aio.Server, int]:
    return await runtime.create_server(spec(settings), settings, engines, tracer_provider)
