"""From a synthesis request to encoded audio chunks, transport-free.

`plan_synthesis` validates the request against the loaded models and voices and
applies defaults; `EncodedSynthesis` runs the engine and the encoder together and
yields bytes in chunks of at most `CHUNK_BYTES`. It is a plain blocking iterator: the
servicer pulls it through the thread pool, one sentence at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from services.tts.synthesizer import SynthesisOptions, Synthesizer, VoiceCard
from speechmesh.common import limits
from speechmesh.common.audio import OutputSpec, StreamEncoder
from speechmesh.common.errors import InvalidArgument, NotFound
from speechmesh.common.registry import EngineRegistry


@dataclass(frozen=True)
class SynthesisPlan:
    model: str
    engine: Synthesizer
    voice: VoiceCard
    text: str
    speed: float

    @property
    def options(self) -> SynthesisOptions:
        return SynthesisOptions(self.voice.id, self.voice.language, self.speed)


def base_language(code: str) -> str:
    return code.replace("_", "-").split("-")[0].lower()


def plan_synthesis(
    registry: EngineRegistry[Synthesizer], *, text: str, model: str, voice: str, language: str, speed: float
) -> SynthesisPlan:
    if not text.strip():
        raise InvalidArgument("'text' must contain something to say; it is empty or only whitespace.", param="text")
    if len(text) > limits.TEXT_MAX_CHARS:
        raise InvalidArgument(
            f"'text' is {len(text)} characters; the maximum is {limits.TEXT_MAX_CHARS}.", param="text"
        )
    speed = speed or limits.SPEED_DEFAULT
    if not limits.SPEED_MIN <= speed <= limits.SPEED_MAX:
        raise InvalidArgument(
            f"'speed' must be between {limits.SPEED_MIN} and {limits.SPEED_MAX}; got {speed:g}.", param="speed"
        )
    model_id, engine = registry.get(model)
    voices = list(engine.voices())
    wanted = base_language(language) if language else ""
    if voice:
        card = next((v for v in voices if v.id == voice), None)
        if card is None:
            raise NotFound(
                f"Voice '{voice}' does not exist for model '{model_id}'; see /v1/voices/ for the list.",
                voice=voice,
                model=model_id,
            )
        if wanted and card.language != wanted:
            raise InvalidArgument(f"Voice '{voice}' speaks '{card.language}', not '{language}'.", param="language")
    else:
        card = next((v for v in voices if not wanted or v.language == wanted), None)
        if card is None:
            spoken = ", ".join(sorted({v.language for v in voices}))
            raise InvalidArgument(
                f"Model '{model_id}' has no voice for language '{language}'; it speaks: {spoken}.", param="language"
            )
    return SynthesisPlan(model_id, engine, card, text, speed)


class EncodedSynthesis:
    """Iterates encoded audio chunks; `duration_seconds` etc. are final once exhausted."""

    def __init__(self, plan: SynthesisPlan, output: OutputSpec, *, streaming: bool) -> None:
        self.plan = plan
        self.encoder = StreamEncoder(
            output.format,
            plan.voice.sample_rate,
            sample_rate=output.sample_rate,
            channels=output.channels,
            bitrate_kbps=output.bitrate_kbps,
            streaming=streaming,
        )

    def __iter__(self) -> Iterator[bytes]:
        for pcm in self.plan.engine.synthesize(self.plan.text, self.plan.options):
            yield from _chunks(self.encoder.feed(pcm))
        yield from _chunks(self.encoder.finish())


def _chunks(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), limits.CHUNK_BYTES):
        yield data[start : start + limits.CHUNK_BYTES]
