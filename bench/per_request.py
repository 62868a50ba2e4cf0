"""`make bench`'s measurements of one request at a time: what the mesh adds over the direct
engine call (through the gRPC client, through the gateway), and streaming time to first
audio through the gateway.

Each operation is sampled for a number of rounds or until its time budget is spent (at
least one round), so a machine busy with other work makes the samples fewer, not the run
longer. The paths alternate within a round, so a change of load hits all three alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
from engine_calls import VOICES, recognize, synthesize
from load_report import Overhead, Plan, Streaming
from mesh_calls import first_audio, stt_gateway, stt_service, timed, tts_body, tts_gateway, tts_service

from services.stt.recognizer import Recognizer
from services.tts.synthesizer import Synthesizer
from speechmesh.clients.mesh import Mesh

TEXT = "Speech services are judged by how fast they answer, and this one is measured while it is under load."
# What warms a path (its connection, the gateway's voice lookup) without costing a Kokoro
# synthesis of the whole sentence; the engines warmed up when they were loaded.
WARM_TEXT = "Warming up."


async def compare(
    runs: int,
    budget: float,
    direct: Callable[[], float],
    service: Callable[[], Awaitable[float]],
    gateway: Callable[[], Awaitable[float]],
) -> tuple[list[float], list[float], list[float]]:
    """Wall seconds of each path, a round after another, for `runs` rounds or `budget` seconds."""
    deadline = time.monotonic() + budget
    times: tuple[list[float], list[float], list[float]] = ([], [], [])
    for _ in range(runs):
        sample = (await asyncio.to_thread(direct), await service(), await gateway())
        for values, value in zip(times, sample, strict=True):
            values.append(value)
        if time.monotonic() > deadline:
            break
    return times


async def tts_overhead(plan: Plan, engine: Synthesizer, model: str, mesh: Mesh, http: httpx.AsyncClient) -> Overhead:
    voice = VOICES[model]
    warm = tts_body(WARM_TEXT, model, voice, "wav")
    await tts_service(mesh, warm)
    await timed(tts_gateway(http, warm))
    body = tts_body(TEXT, model, voice, "wav")
    times = await compare(
        plan.runs,
        plan.budget,
        lambda: synthesize(engine, voice, TEXT)[0],
        lambda: tts_service(mesh, body),
        lambda: timed(tts_gateway(http, body)),
    )
    return Overhead(f"TTS {model}, {len(TEXT)} chars, wav", *times)


async def stt_overhead(
    plan: Plan, recognizer: Recognizer, mesh: Mesh, http: httpx.AsyncClient, speech: bytes, label: str
) -> Overhead:
    # The engines warmed up when they loaded; a first call of each path warms the decoder
    # on real speech, the gateway's route and the channels.
    await asyncio.to_thread(recognize, recognizer, speech)
    await timed(stt_gateway(http, speech, "whisper"))
    await stt_service(mesh, speech, "whisper")
    times = await compare(
        plan.runs,
        plan.budget,
        lambda: recognize(recognizer, speech),
        lambda: stt_service(mesh, speech, "whisper"),
        lambda: timed(stt_gateway(http, speech, "whisper")),
    )
    return Overhead(label, *times)


async def streaming(plan: Plan, models: tuple[str, ...], http: httpx.AsyncClient) -> list[Streaming]:
    """Per model and format (MP3, WAV): `plan.stream_runs` streams or `plan.budget` seconds."""
    rows = []
    for model in models:
        for audio_format in ("mp3", "wav"):
            await first_audio(http, tts_body(WARM_TEXT, model, VOICES[model], audio_format, stream=True))
            body = tts_body(TEXT, model, VOICES[model], audio_format, stream=True)
            deadline = time.monotonic() + plan.budget / 2
            firsts: list[float] = []
            while len(firsts) < plan.stream_runs and (len(firsts) < 2 or time.monotonic() < deadline):
                firsts.append(await first_audio(http, body))
            rows.append(Streaming(model, audio_format, firsts))
    return rows
