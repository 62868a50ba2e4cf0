"""From a synthesis request to encoded audio chunks, transport-free.

`plan_synthesis` validates the request against the loaded models and voices and
applies defaults (the text's language is detected when not given, and picks the voice
when none is named); `EncodedSynthesis` runs the engine and the encoder together and
yields bytes in chunks of at most `CHUNK_BYTES`. It is a plain blocking iterator: the
servicer pulls it through the thread pool, one sentence at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from services.tts import aliases
from services.tts.language import detect_language
from services.tts.synthesizer import SynthesisOptions, Synthesizer, VoiceCard
from speechmesh.common import limits
from speechmesh.common.audio.encode import StreamEncoder
from speechmesh.common.audio.formats import OutputSpec
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.audio.stretch import time_stretch
from speechmesh.common.cancel import checkpoint
from speechmesh.common.chunks import chunked
from speechmesh.common.errors import InvalidArgument, NotFound
from speechmesh.common.registry import EngineRegistry
from speechmesh.common.sentences import iter_sentences
from speechmesh.common.text import text_problem

# How much of a stream's first audio is encoded and sent on its own: enough for every
# format's first frame (FLAC's 4,608 samples are the most, 0.21 s at 22.05 kHz).
FIRST_BLOCK_SECONDS = 0.25


@dataclass(frozen=True)
class SynthesisPlan:
    model: str
    engine: Synthesizer
    voice: VoiceCard
    text: str
    speed: float
    # Language of the text: given, or detected among the languages the voice(s) speak.
    language: str

    @property
    def engine_speed(self) -> float:
        return min(max(self.speed, limits.SPEED_MIN), limits.SPEED_MAX)

    @property
    def stretch(self) -> float:
        """What time stretching adds beyond the speed the engine renders."""
        return self.speed / self.engine_speed

    @property
    def options(self) -> SynthesisOptions:
        return SynthesisOptions(self.voice.id, self.language, self.engine_speed)


def base_language(code: str) -> str:
    return code.replace("_", "-").split("-")[0].lower()


def split_pcm(pcm: Pcm, seconds: float) -> tuple[Pcm, Pcm]:
    """The first `seconds` of `pcm` and the rest."""
    frames = round(seconds * pcm.sample_rate)
    return Pcm(pcm.samples[:frames], pcm.sample_rate), Pcm(pcm.samples[frames:], pcm.sample_rate)


def validate_text(text: str) -> None:
    problem = text_problem(text)
    if problem:
        raise InvalidArgument(f"'text' {problem}.", param="text")
    if len(text) > limits.TEXT_MAX_CHARS:
        raise InvalidArgument(
            f"'text' is {len(text)} characters; the maximum is {limits.TEXT_MAX_CHARS}.", param="text"
        )


def plan_synthesis(
    registry: EngineRegistry[Synthesizer], *, text: str, model: str, voice: str, language: str, speed: float
) -> SynthesisPlan:
    validate_text(text)
    speed = speed or limits.SPEED_DEFAULT
    if not limits.SYNTHESIS_SPEED_MIN <= speed <= limits.SYNTHESIS_SPEED_MAX:
        raise InvalidArgument(
            f"'speed' must be between {limits.SYNTHESIS_SPEED_MIN} and {limits.SYNTHESIS_SPEED_MAX}; got {speed:g}.",
            param="speed",
        )
    if voice and not model:
        # Voice ids are unique across models: a voice names its model (an alias, its own).
        model = next((m for m, e in registry.engines().items() if any(v.id == voice for v in e.voices())), "")
        if not model and voice in aliases.HOSTED_VOICES:
            model = aliases.HOSTED_VOICES[voice].model
    model_id, engine = registry.get(model)
    voices = list(engine.voices())
    wanted = base_language(language) if language else ""
    if voice:
        card = next((v for v in voices if v.id == voice), None)
        default_language = card.language if card else ""
        resolved = aliases.resolve(voice, {model_id: engine}) if card is None else None
        if resolved is not None:
            # Spoken by the installed voice the alias stands for, in the alias's language.
            card, default_language = resolved[1], resolved[0].language
        if card is None:
            raise NotFound(
                f"Voice '{voice}' does not exist for model '{model_id}'; "
                f"see /v1/voices/?model={model_id} for the list.",
                voice=voice,
                model=model_id,
                list_url=f"/v1/voices/?model={model_id}",
            )
        if wanted and not card.speaks(wanted):
            its_languages = ", ".join(card.languages or (card.language,))
            raise InvalidArgument(
                f"Voice '{voice}' speaks {its_languages}, not '{language}'.", param="language", voice=voice
            )
        text_language = wanted or detect_language(text, card.languages or (card.language,), default_language)
        return SynthesisPlan(model_id, engine, card, text, speed, text_language)
    spoken = {code for v in voices for code in (v.language, *v.languages)}
    if wanted and wanted not in spoken:
        raise InvalidArgument(
            f"Model '{model_id}' has no voice for language '{language}'; it speaks: {', '.join(sorted(spoken))}.",
            param="language",
        )
    # English when unsure: the likeliest language of a text too short to tell.
    text_language = wanted or detect_language(text, spoken, "en" if "en" in spoken else voices[0].language)
    # A voice whose own language it is, before one that also speaks it.
    card = min((v for v in voices if v.speaks(text_language)), key=lambda v: v.language != text_language)
    return SynthesisPlan(model_id, engine, card, text, speed, text_language)


class EncodedSynthesis:
    """Iterates encoded audio chunks; `duration_seconds` etc. are final once exhausted."""

    def __init__(self, plan: SynthesisPlan, output: OutputSpec, *, first_piece: int | None) -> None:
        """`first_piece`: None for a whole file; for a stream, how many characters the first
        piece of text may have (0: whole sentences)."""
        self.plan = plan
        self.first_piece = first_piece
        self.encoder = StreamEncoder(
            output.format,
            plan.voice.sample_rate,
            sample_rate=output.sample_rate,
            channels=output.channels,
            bitrate_kbps=output.bitrate_kbps,
            streaming=first_piece is not None,
        )

    def __iter__(self) -> Iterator[bytes]:
        plan = self.plan
        streaming = self.first_piece is not None
        # Sentence by sentence, so streaming sends the first one while the rest waits.
        for sentence in iter_sentences(plan.text, plan.language, first_piece=self.first_piece or 0):
            # A whole-file synthesis yields nothing until the end (its encoder writes a
            # seekable buffer), so the pool thread checks here whether the caller has gone.
            checkpoint()
            for pcm in plan.engine.synthesize(sentence, plan.options):
                pcm = time_stretch(pcm, plan.stretch)
                if streaming and self.encoder.frames_in == 0:
                    # The stream's first audio: its first frames leave before the rest of the
                    # block is encoded (AAC and Vorbis take 20-60 ms a second of audio).
                    head, pcm = split_pcm(pcm, FIRST_BLOCK_SECONDS)
                    yield from chunked(self.encoder.feed(head))
                yield from chunked(self.encoder.feed(pcm))
        yield from chunked(self.encoder.finish())
