"""The STT service as a gRPC server: its spec and `create_server(settings, engines)`."""

from __future__ import annotations

import functools

import grpc
from opentelemetry.trace import TracerProvider

from services.stt.engine_set import SttEngines
from services.stt.servicer import SpeechToTextServicer
from services.stt.settings import SttSettings
from speechmesh.runtime import server as runtime
from speechmesh.runtime.blocking import Blocking
from speechmesh.v1 import stt_pb2, stt_pb2_grpc


def _add_servicers(settings: SttSettings, server: grpc.aio.Server, engines: SttEngines, blocking: Blocking) -> None:
    servicer = SpeechToTextServicer(engines, blocking, settings)
    stt_pb2_grpc.add_SpeechToTextServicer_to_server(servicer, server)


def spec(settings: SttSettings) -> runtime.ServiceSpec:
    return runtime.ServiceSpec(
        name="stt",
        service_names=(stt_pb2.DESCRIPTOR.services_by_name["SpeechToText"].full_name,),
        add_servicers=functools.partial(_add_servicers, settings),
    )


async def create_server(
    settings: SttSettings, engines: SttEngines, tracer_provider: TracerProvider | None = None
) -> tuple[grpc.aio.Server, int]:
    return await runtime.create_server(spec(settings), settings, engines, tracer_provider)
