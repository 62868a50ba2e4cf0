"""One gRPC target of a service and its channel: a service's default pods, or the pods of
some of its models. Its name (`tts`, `tts[kokoro]`) labels health, logs and readiness."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from speechmesh.clients.calls import calling


@dataclass(frozen=True)
class Endpoint:
    service: str
    address: str
    models: tuple[str, ...]
    channel: grpc.aio.Channel

    @property
    def name(self) -> str:
        return f"{self.service}[{','.join(self.models)}]" if self.models else self.service

    def use(self) -> grpc.aio.Channel:
        """The channel, noting that the current task called this endpoint."""
        calling(self.name)
        return self.channel


class EndpointClient:
    """What a client of a service on one endpoint holds: the endpoint and its default deadline."""

    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        self.endpoint = endpoint
        self._timeout = timeout

    def _deadline(self, timeout: float | None) -> float:
        """Notes that the current task calls the endpoint; the call's deadline."""
        self.endpoint.use()
        return timeout or self._timeout
