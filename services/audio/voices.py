"""The target voices of voice conversion: built-in TTS voices, measured from their speech.

A target voice is any voice of `/v1/voices/`. The audio service asks the TTS service (over
gRPC, through `speechmesh.clients`) to speak a fixed, varied text with it, measures that
speech once (`VoiceConverter.profile`) and keeps the profile; a few hundred milliseconds
of TTS and a second or two of WORLD analysis on the first conversion toward a voice.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import grpc

from services.audio.processors import VoiceConverter
from speechmesh.clients.config import ClientConfig, ServiceTarget
from speechmesh.clients.mesh import Mesh
from speechmesh.common.audio.decode import decode_audio
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.errors import ModelUnavailable, NotFound, UpstreamUnavailable
from speechmesh.runtime.blocking import Blocking
from speechmesh.speakers.world import PROFILE_TEXT, VoiceProfile
from speechmesh.v1 import common_pb2, tts_pb2

_RATE = 24_000


class TargetVoices:
    def __init__(self, address: str, routes: dict[str, str], timeout: float, keep: int, blocking: Blocking) -> None:
        self._config = (
            ClientConfig(tts=ServiceTarget(address=address, models=routes, timeout_seconds=timeout))
            if address
            else None
        )
        self._mesh: Mesh | None = None  # opened on first use, inside the serving event loop
        self._keep = keep
        self._blocking = blocking
        self._profiles: OrderedDict[tuple[str, str], VoiceProfile] = OrderedDict()
        self._measuring: dict[tuple[str, str], asyncio.Lock] = {}

    async def profile(self, voice: str, model: str, converter: VoiceConverter) -> VoiceProfile:
        """The profile of TTS voice `voice` as `converter` (`model`) measures voices."""
        key = (voice, model)
        lock = self._measuring.setdefault(key, asyncio.Lock())
        try:
            async with lock:  # concurrent first requests toward one voice measure it once
                if key not in self._profiles:
                    speech = await self._speak(voice)
                    self._profiles[key] = await self._blocking.run(converter.profile, speech)
                    while len(self._profiles) > self._keep:
                        self._profiles.popitem(last=False)
                self._profiles.move_to_end(key)
                return self._profiles[key]
        finally:
            # One lock per voice being measured, not per voice id ever asked for.
            if not lock.locked() and self._measuring.get(key) is lock:
                del self._measuring[key]

    async def _speak(self, voice: str) -> Pcm:
        if self._config is None:
            raise ModelUnavailable(
                "Conversion toward a built-in voice needs the TTS service, and this audio service has none "
                "configured (SPEECHMESH_AUDIO_TTS_ADDRESS)."
            )
        if self._mesh is None:
            self._mesh = Mesh(self._config)
        assert self._mesh.tts is not None
        request = tts_pb2.SynthesizeRequest(
            text=PROFILE_TEXT,
            voice=voice,
            output=common_pb2.AudioOutputSpec(encoding=common_pb2.WAV, sample_rate_hertz=_RATE),
        )
        try:
            audio, _ = await self._mesh.tts.synthesize(request)
        except grpc.aio.AioRpcError as error:
            raise _voice_error(voice, error) from None
        return await self._blocking.run(decode_audio, audio)

    async def close(self) -> None:
        if self._mesh is not None:
            await self._mesh.close()


def _voice_error(voice: str, error: grpc.aio.AioRpcError) -> Exception:
    code = error.code()
    if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
        return NotFound(f"Voice '{voice}' does not exist; /v1/voices/ lists the voices.", voice=voice)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return ModelUnavailable(f"The model of voice '{voice}' is not available: {error.details()}", voice=voice)
    return UpstreamUnavailable(f"The TTS service could not speak voice '{voice}' now; retry in a few seconds.")
