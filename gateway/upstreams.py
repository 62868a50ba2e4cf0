"""One gRPC channel and its stubs per upstream service, plus their health."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.settings import GatewaySettings
from speechmesh.v1 import models_pb2_grpc, stt_pb2_grpc, tts_pb2_grpc

_STT_REPLY_MAX_BYTES = 64 * 1024 * 1024


class Upstreams:
    def __init__(self, settings: GatewaySettings) -> None:
        self._health_timeout = settings.health_timeout_seconds
        self.channels: dict[str, grpc.aio.Channel] = {
            "tts": grpc.aio.insecure_channel(settings.tts_address),
            # A transcript of hours of speech with word times can pass gRPC's 4 MB default.
            "stt": grpc.aio.insecure_channel(
                settings.stt_address, options=[("grpc.max_receive_message_length", _STT_REPLY_MAX_BYTES)]
            ),
        }
        self.tts = tts_pb2_grpc.TextToSpeechStub(self.channels["tts"])
        self.stt = stt_pb2_grpc.SpeechToTextStub(self.channels["stt"])
        self.catalogs = {name: models_pb2_grpc.ModelCatalogStub(channel) for name, channel in self.channels.items()}

    async def health(self) -> dict[str, str]:
        """Each upstream's health: SERVING, NOT_SERVING, or UNREACHABLE."""

        async def check(channel: grpc.aio.Channel) -> str:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=self._health_timeout
                )
            except grpc.aio.AioRpcError:
                return "UNREACHABLE"
            return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

        names = list(self.channels)
        states = await asyncio.gather(*(check(self.channels[name]) for name in names))
        return dict(zip(names, states, strict=True))

    async def close(self) -> None:
        await asyncio.gather(*(channel.close() for channel in self.channels.values()))
