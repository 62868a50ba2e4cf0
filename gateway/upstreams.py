"""The gRPC channels and stubs of the upstream services, which TTS pod serves which model,
and their health.

TTS can run as one pod serving every engine or as several (per-model pods, each with its
own `SPEECHMESH_TTS_ENGINES`): `tts_routes` sends a model's requests to the pod that serves
it and everything else to `tts_address`; listings ask every TTS pod and keep each model's
entries from the pod it is routed to.

Each channel's health is watched for as long as the gateway runs (`availability`), so a 503
can say when the upstream should be back; the channels retry a lost connection within a
second, so the first call after a restarted service is SERVING again goes through. Which
upstreams a request has called is kept in a context variable (`called()`), so that the 503
of a failed call estimates that upstream's restart, not another's.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.availability import Availability
from gateway.settings import GatewaySettings
from speechmesh.v1 import models_pb2_grpc, stt_pb2_grpc, tts_pb2, tts_pb2_grpc

log = logging.getLogger(__name__)

_STT_REPLY_MAX_BYTES = 64 * 1024 * 1024
# gRPC's default reconnect backoff starts at 1 s and grows 1.6 times per failed attempt up
# to 120 s: after a restart of a minute the next attempt can be half a minute away, and the
# channel fails calls (503) all that while though the service is SERVING. Retrying within a
# second costs a refused connection a second while a service is down.
_RECONNECT_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
DEFAULT_TTS = "tts"
# The upstreams the current request has called (each request runs in its own context).
_CALLED: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("speechmesh_upstreams_called", default=())


def _calling(name: str) -> None:
    _CALLED.set((*_CALLED.get(), name))


def called() -> tuple[str, ...]:
    """The upstreams the current request has called so far."""
    return _CALLED.get()


class Upstreams:
    """Created inside the running event loop (lifespan): it starts one health watch per channel."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._health_timeout = settings.health_timeout_seconds
        # One channel per TTS address, named for the models routed to it ("tts:kokoro").
        routed: dict[str, list[str]] = {}
        for model, address in settings.tts_routes.items():
            if address != settings.tts_address:
                routed.setdefault(address, []).append(model)
        names = {settings.tts_address: DEFAULT_TTS} | {
            address: f"tts:{','.join(models)}" for address, models in routed.items()
        }
        self._tts_owner = {model: names[address] for model, address in settings.tts_routes.items()}
        self._per_model = set(names.values()) - {DEFAULT_TTS}
        # Voice ids are stable: once found, a voice's model is not asked for again.
        self._voice_models: dict[str, str] = {}
        self.channels: dict[str, grpc.aio.Channel] = {
            name: grpc.aio.insecure_channel(address, options=_RECONNECT_OPTIONS) for address, name in names.items()
        }
        # A transcript of hours of speech with word times can pass gRPC's 4 MB default.
        self.channels["stt"] = grpc.aio.insecure_channel(
            settings.stt_address,
            options=[*_RECONNECT_OPTIONS, ("grpc.max_receive_message_length", _STT_REPLY_MAX_BYTES)],
        )
        self.tts_stubs = {name: tts_pb2_grpc.TextToSpeechStub(self.channels[name]) for name in names.values()}
        self._stt = stt_pb2_grpc.SpeechToTextStub(self.channels["stt"])
        self.catalogs = {name: models_pb2_grpc.ModelCatalogStub(channel) for name, channel in self.channels.items()}
        self.availability = Availability(self.channels, settings.upstream_restart_seconds)
        self._watches = [
            asyncio.create_task(self.availability.watch(name, channel)) for name, channel in self.channels.items()
        ]

    @property
    def routed(self) -> bool:
        """Whether some TTS model is served by a pod of its own."""
        return bool(self._per_model)

    def tts_owner(self, model: str) -> str:
        """The name of the TTS upstream that serves `model` ('' = the default pod's default)."""
        return self._tts_owner.get(model, DEFAULT_TTS)

    def tts(self, model: str = "") -> tts_pb2_grpc.TextToSpeechStub:
        """The stub of the TTS pod serving `model`."""
        name = self.tts_owner(model)
        _calling(name)
        return self.tts_stubs[name]

    @property
    def stt(self) -> stt_pb2_grpc.SpeechToTextStub:
        _calling("stt")
        return self._stt

    async def voices(self, query: tts_pb2.ListVoicesRequest, timeout: float) -> list[tts_pb2.Voice]:
        """The voices of every TTS pod (of the model's own pod when `query` names one), each
        model's from the pod it is routed to. A pod that cannot answer is left out (logged)
        while another can; when none can, its error is raised."""
        names = [self.tts_owner(query.model)] if query.model else list(self.tts_stubs)
        for name in names:
            _calling(name)
        replies = await asyncio.gather(
            *(self.tts_stubs[name].ListVoices(query, timeout=timeout) for name in names), return_exceptions=True
        )
        voices: list[tts_pb2.Voice] = []
        failures: list[grpc.aio.AioRpcError] = []
        for name, reply in zip(names, replies, strict=True):
            if isinstance(reply, grpc.aio.AioRpcError):
                log.warning("voice listing failed", extra={"service": name, "grpc_code": reply.code().name})
                failures.append(reply)
            elif isinstance(reply, BaseException):
                raise reply
            else:
                voices += [voice for voice in reply.voices if self.tts_owner(voice.model) == name]
        if len(failures) == len(names):
            raise failures[0]
        return voices

    async def model_of_voice(self, voice: str, timeout: float) -> str:
        """The model whose pod lists `voice`, or '' (the default pod then answers for it)."""
        if voice not in self._voice_models:
            listed = await self.voices(tts_pb2.ListVoicesRequest(), timeout=timeout)
            self._voice_models.update((v.id, v.model) for v in listed)
        return self._voice_models.get(voice, "")

    def required(self, name: str) -> bool:
        """Whether the gateway is unready without this upstream. Per-model TTS pods are not:
        when one is down, its models answer 503 while the rest of the API serves."""
        return name not in self._per_model

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
        for watch in self._watches:
            watch.cancel()
        await asyncio.gather(*self._watches, return_exceptions=True)
        await asyncio.gather(*(channel.close() for channel in self.channels.values()))
