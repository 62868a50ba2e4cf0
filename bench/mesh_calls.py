"""The same work asked of the mesh two ways: through the typed gRPC clients
(speechmesh.clients, as the gateway calls a service) and through the gateway's HTTP API.

The gRPC requests are built by the gateway's own functions from the same fields the HTTP
request carries, so both paths ask the service for exactly the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any

import httpx

from gateway.routers.stt import recognition_config
from gateway.routers.tts import synthesize_request
from gateway.schemas import TtsRequest
from speechmesh.clients.mesh import Mesh

# The STT form's defaults (gateway/routers/stt.py): detected language, no extras, VAD on.
STT_DEFAULTS: dict[str, Any] = {
    "language": "auto",
    "timestamps": False,
    "diarize": False,
    "vad_filter": True,
    "min_speakers": 0,
    "max_speakers": 0,
}


def tts_body(text: str, model: str, voice: str, audio_format: str, stream: bool = False) -> dict[str, Any]:
    return {"text": text, "model": model, "voice": voice, "format": audio_format, "stream": stream}


async def tts_service(mesh: Mesh, body: dict[str, Any]) -> float:
    """Wall seconds of one whole synthesis through the gRPC client."""
    assert mesh.tts is not None
    started = time.perf_counter()
    audio, _ = await mesh.tts.synthesize(synthesize_request(TtsRequest.model_validate(body)))
    if not audio:
        raise RuntimeError("the TTS service answered no audio")
    return time.perf_counter() - started


async def tts_gateway(http: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await http.post("/v1/tts/", json=body)


async def first_audio(http: httpx.AsyncClient, body: dict[str, Any]) -> float:
    """Seconds to the first byte of a streamed synthesis (`body` has "stream": true); the
    rest is read, as a listener would: an abandoned stream's synthesis would otherwise
    compete with the next request for the CPU."""
    started = time.perf_counter()
    first = 0.0
    async with http.stream("POST", "/v1/tts/", json=body) as reply:
        reply.raise_for_status()
        async for chunk in reply.aiter_raw():
            if chunk and not first:
                first = time.perf_counter() - started
    return first


async def stt_service(mesh: Mesh, data: bytes, model: str) -> float:
    """Wall seconds of one transcription of the file `data` through the gRPC client."""
    assert mesh.stt is not None
    started = time.perf_counter()
    await mesh.stt.recognize(recognition_config({**STT_DEFAULTS, "model": model}), data)
    return time.perf_counter() - started


async def stt_gateway(http: httpx.AsyncClient, data: bytes, model: str, **options: str) -> httpx.Response:
    return await http.post("/v1/stt/", files={"file": ("speech.wav", data)}, data={"model": model, **options})


async def timed(reply: Awaitable[httpx.Response]) -> float:
    """Wall seconds until an HTTP request (an awaitable response) succeeded."""
    started = time.perf_counter()
    response = await reply
    response.raise_for_status()
    return time.perf_counter() - started
