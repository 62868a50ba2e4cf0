"""What spoke a synthesis: the response headers that disclose it and the model it is billed at."""

from __future__ import annotations

from gateway.admission import Ticket
from speechmesh.clients.tts import TtsClient
from speechmesh.v1 import tts_pb2


def plan_headers(plan: tts_pb2.SynthesisPlan | tts_pb2.SynthesisResult) -> dict[str, str]:
    """X-Model, X-Voice and X-Language (an alias names its real voice here)."""
    return {"X-Model": plan.model, "X-Voice": plan.voice, "X-Language": plan.language}


async def spoke(ticket: Ticket, plan: tts_pb2.SynthesisPlan | tts_pb2.SynthesisResult) -> None:
    """Before the response starts: its headers name the voice, its credits the model's tier."""
    ticket.describe(plan_headers(plan))
    await ticket.served(model=plan.model)


async def priced_model(tts: TtsClient, model: str | None, voice: str | None) -> str | None:
    """The model a synthesis will use as far as the gateway can tell before it starts (the
    voice's, where only a voice is named); None when the service's default will choose."""
    if model:
        return model
    return (await tts.model_of_voice(voice) if voice else "") or None
