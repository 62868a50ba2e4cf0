"""Calling the TTS service from a route: the plan's text limit, whole files, and streams."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from fastapi import Request

from gateway.auth import Caller
from gateway.errors import ApiError
from speechmesh.v1 import tts_pb2, tts_pb2_grpc


def check_text_length(caller: Caller, text: str, param: str) -> None:
    if len(text) > caller.plan.max_text_chars:
        raise ApiError(
            400,
            "bad_request",
            f"'{param}' is {len(text)} characters; the {caller.plan.name} plan allows {caller.plan.max_text_chars}.",
            param=param,
        )


async def collect(call: grpc.aio.UnaryStreamCall) -> tuple[bytes, tts_pb2.SynthesisResult]:
    """The whole file and its result from a Synthesize call."""
    parts: list[bytes] = []
    result = tts_pb2.SynthesisResult()
    async for message in call:
        if message.HasField("audio_content"):
            parts.append(message.audio_content)
        elif message.HasField("result"):
            result = message.result
    return b"".join(parts), result


async def _stub(request: Request, synthesis: tts_pb2.SynthesizeRequest) -> tts_pb2_grpc.TextToSpeechStub:
    """The TTS pod for the request. A voice named without its model goes to the pod of the
    model that has it (a pod finds the model itself among those it loads)."""
    upstreams = request.app.state.upstreams
    if upstreams.routed and synthesis.voice and not synthesis.model:
        synthesis.model = await upstreams.model_of_voice(
            synthesis.voice, timeout=request.app.state.settings.health_timeout_seconds * 5
        )
    return upstreams.tts(synthesis.model)


async def synthesize(request: Request, synthesis: tts_pb2.SynthesizeRequest) -> tuple[bytes, tts_pb2.SynthesisResult]:
    stub = await _stub(request, synthesis)
    return await collect(stub.Synthesize(synthesis, timeout=request.app.state.settings.rpc_timeout_seconds))


async def stream(
    request: Request, synthesis: tts_pb2.SynthesizeRequest
) -> tuple[tts_pb2.SynthesisPlan, AsyncIterator[bytes]]:
    """The plan (model, voice, language) and the audio chunks as each sentence is
    synthesized. The first message is awaited here, so a bad request raises (and gets its
    error status) before any response header is sent, and the headers can name the voice."""
    stub = await _stub(request, synthesis)
    call = stub.SynthesizeStream(synthesis, timeout=request.app.state.settings.rpc_timeout_seconds)
    messages = aiter(call)
    try:
        first = await anext(messages, None)
    except BaseException:
        call.cancel()
        raise
    plan = first.plan if first is not None and first.HasField("plan") else tts_pb2.SynthesisPlan()

    async def chunks() -> AsyncIterator[bytes]:
        try:
            # A service that sends no plan (one older than the gateway) starts with audio.
            if first is not None and first.HasField("audio_content"):
                yield first.audio_content
            async for message in messages:
                if message.HasField("audio_content"):
                    yield message.audio_content
        finally:
            # A client that went away cancels synthesis upstream.
            call.cancel()

    return plan, chunks()


def plan_headers(plan: tts_pb2.SynthesisPlan | tts_pb2.SynthesisResult) -> dict[str, str]:
    """What spoke, disclosed in the response headers (an alias names its real voice here)."""
    return {"X-Model": plan.model, "X-Voice": plan.voice, "X-Language": plan.language}
