"""The service clients as route dependencies (speechmesh/clients holds the clients); async,
so FastAPI does not run them in its thread pool."""

from __future__ import annotations

from fastapi import Request

from gateway.errors import ApiError
from speechmesh.clients.audio import AudioClient
from speechmesh.clients.chat import ChatClient
from speechmesh.clients.mesh import Mesh
from speechmesh.clients.stt import SttClient
from speechmesh.clients.tts import TtsClient


async def mesh(request: Request) -> Mesh:
    found: Mesh = request.app.state.mesh
    return found


def _missing(service: str) -> ApiError:
    return ApiError(503, "model_loading", f"The {service} service is not deployed on this server.")


async def tts_client(request: Request) -> TtsClient:
    client = (await mesh(request)).tts
    if client is None:
        raise _missing("TTS")
    return client


async def stt_client(request: Request) -> SttClient:
    client = (await mesh(request)).stt
    if client is None:
        raise _missing("STT")
    return client


async def audio_client(request: Request) -> AudioClient:
    client = (await mesh(request)).audio
    if client is None:
        raise _missing("audio")
    return client


async def chat_client(request: Request) -> ChatClient:
    client = (await mesh(request)).chat
    if client is None:
        raise _missing("chat")
    return client
