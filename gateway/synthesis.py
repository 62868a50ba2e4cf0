"""What spoke a synthesis, as the response headers disclose it."""

from __future__ import annotations

from speechmesh.v1 import tts_pb2


def plan_headers(plan: tts_pb2.SynthesisPlan | tts_pb2.SynthesisResult) -> dict[str, str]:
    """X-Model, X-Voice and X-Language (an alias names its real voice here)."""
    return {"X-Model": plan.model, "X-Voice": plan.voice, "X-Language": plan.language}
