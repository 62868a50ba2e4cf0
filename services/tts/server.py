"""The TTS service as a gRPC server: its spec and `create_server(settings, engines)`."""

from __future__ import annotations

from typing import Any

import grpc

from services.tts.servicer import TextToSpeechServicer
from services.tts.settings import TtsSettings
from speechmesh import runtime
from speechmesh.runtime import Blocking
from speechmesh.v1 import tts_pb2, tts_pb2_grpc


def _add_servicers(server: grpc.aio.Server, engines: Any, blocking: Blocking) -> None:
    tts_pb2_grpc.add_TextToSpeechServicer_to_server(TextToSpeechServicer(engines, blocking), server)


SPEC = runtime.ServiceSpec(
    name="tts",
    service_names=(tts_pb2.DESCRIPTOR.services_by_name["TextToSpeech"].full_name,),
    add_servicers=_add_servicers,
)


async def create_server(settings: TtsSettings, engines: runtime.server.EngineSet) -> tuple[grpc.aio.Server, int]:
    return await runtime.create_server(SPEC, settings, engines)
