"""`Mesh`: one client per configured service over channels built from one `ClientConfig`,
the health of every endpoint, and the model catalog of them all.

Each endpoint's health is watched for as long as the mesh is open (`availability`), so an
error can say when the endpoint should be back, and a caller can tell which capabilities
serve now without failing a call first.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.trace import TracerProvider

from speechmesh.clients import audio, chat, stt, tts
from speechmesh.clients.audio import AudioClient
from speechmesh.clients.availability import Availability
from speechmesh.clients.channels import open_channel
from speechmesh.clients.chat import ChatClient
from speechmesh.clients.config import ClientConfig, ServiceTarget
from speechmesh.clients.endpoint import Endpoint
from speechmesh.clients.stt import SttClient
from speechmesh.clients.tts import TtsClient
from speechmesh.v1 import models_pb2, models_pb2_grpc

log = logging.getLogger(__name__)

CATALOG = models_pb2.DESCRIPTOR.services_by_name["ModelCatalog"].full_name
_IDEMPOTENT = {
    "tts": tts.IDEMPOTENT,
    "stt": stt.IDEMPOTENT,
    "audio": audio.IDEMPOTENT,
    "chat": chat.IDEMPOTENT,
}
SERVING = "SERVING"


class Mesh:
    """Open it inside the running event loop: it starts one health watch per endpoint."""

    def __init__(self, config: ClientConfig, tracer_provider: TracerProvider | None = None) -> None:
        self._config = config
        self._tracer_provider = tracer_provider
        self.endpoints: dict[str, list[Endpoint]] = {}
        for service in ("tts", "stt", "audio", "chat"):
            target: ServiceTarget | None = getattr(config, service)
            if target is not None:
                self.endpoints[service] = self._endpoints(service, target)
        self.tts = TtsClient(self.endpoints["tts"], config.tts.timeout_seconds) if config.tts else None
        self.stt = SttClient(self.endpoints["stt"][0], config.stt.timeout_seconds) if config.stt else None
        self.audio = AudioClient(self.endpoints["audio"][0], config.audio.timeout_seconds) if config.audio else None
        self.chat = ChatClient(self.endpoints["chat"][0], config.chat.timeout_seconds) if config.chat else None
        every = self.all_endpoints()
        self.availability = Availability([endpoint.name for endpoint in every], config.restart_seconds)
        self._watches = [
            asyncio.create_task(self.availability.watch(endpoint.name, endpoint.channel)) for endpoint in every
        ]

    def _endpoints(self, service: str, target: ServiceTarget) -> list[Endpoint]:
        """The default endpoint first, then one per address that some models have to themselves."""
        routed: dict[str, list[str]] = {}
        for model, address in target.models.items():
            if address != target.address:
                routed.setdefault(address, []).append(model)
        addresses = [(target.address, ()), *((address, tuple(models)) for address, models in routed.items())]
        idempotent = (*_IDEMPOTENT[service], (CATALOG, "ListModels"))
        return [
            Endpoint(
                service,
                address,
                models,
                open_channel(
                    address,
                    idempotent=idempotent,
                    attempts=self._config.retry_attempts,
                    keepalive_seconds=self._config.keepalive_seconds,
                    max_receive_bytes=target.max_receive_bytes,
                    tracer_provider=self._tracer_provider,
                ),
            )
            for address, models in addresses
        ]

    def all_endpoints(self) -> list[Endpoint]:
        return [endpoint for endpoints in self.endpoints.values() for endpoint in endpoints]

    async def health(self) -> dict[str, str]:
        """Each endpoint's health, checked now: SERVING, NOT_SERVING, or UNREACHABLE."""

        async def check(channel: grpc.aio.Channel) -> str:
            try:
                # types-grpcio-health-checking's HealthStub declares no methods.
                reply = await health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
                    health_pb2.HealthCheckRequest(), timeout=self._config.health_timeout_seconds
                )
            except grpc.aio.AioRpcError:
                return "UNREACHABLE"
            return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

        every = self.all_endpoints()
        states = await asyncio.gather(*(check(endpoint.channel) for endpoint in every))
        return {endpoint.name: state for endpoint, state in zip(every, states, strict=True)}

    async def models(self, timeout: float) -> list[models_pb2.ModelInfo]:
        """Every model of every endpoint. Every TTS pod lists every TTS model (those it does
        not load as unavailable): each card is kept from the endpoint that serves the model;
        a model whose own endpoint did not answer is listed as unavailable from another's card."""
        every = self.all_endpoints()
        for endpoint in every:
            endpoint.use()
        replies = await asyncio.gather(
            *(
                models_pb2_grpc.ModelCatalogStub(endpoint.channel).ListModels(
                    models_pb2.ListModelsRequest(), timeout=timeout
                )
                for endpoint in every
            ),
            return_exceptions=True,
        )
        models: list[models_pb2.ModelInfo] = []
        failed: set[str] = set()
        orphans: dict[str, models_pb2.ModelInfo] = {}
        for endpoint, reply in zip(every, replies, strict=True):
            if isinstance(reply, grpc.aio.AioRpcError):
                log.warning("model listing failed", extra={"endpoint": endpoint.name, "grpc_code": reply.code().name})
                failed.add(endpoint.name)
                continue
            if isinstance(reply, BaseException):
                raise reply
            for info in reply.models:
                owner = self.tts.endpoint(info.id) if self.tts and info.type == models_pb2.TTS else endpoint
                if owner is endpoint:
                    models.append(info)
                else:
                    orphans.setdefault(info.id, info)
        for info in orphans.values():
            lost = self.tts.endpoint(info.id) if self.tts else None
            if lost is not None and lost.name in failed:
                orphan = models_pb2.ModelInfo()
                orphan.CopyFrom(info)
                orphan.state = models_pb2.UNAVAILABLE
                orphan.unavailable_reason = f"The pods serving it ({lost.name}) are unreachable; retry later."
                models.append(orphan)
        return models

    async def close(self) -> None:
        for watch in self._watches:
            watch.cancel()
        await asyncio.gather(*self._watches, return_exceptions=True)
        await asyncio.gather(*(endpoint.channel.close() for endpoint in self.all_endpoints()))
