"""The Synthesizer interface every TTS engine implements, and the values it trades in.

Engines import neither gRPC nor the proto package: they take text and options and
yield PCM, one block per sentence or phrase, so the service can stream early.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from speechmesh.common.audio.pcm import Pcm

Gender = Literal["male", "female", "neutral"]


@dataclass(frozen=True)
class VoiceCard:
    id: str
    name: str
    model: str
    language: str
    locale: str
    gender: Gender
    sample_rate: int
    # Every language the voice can speak, its own `language` first; () = only that one.
    languages: tuple[str, ...] = ()

    def speaks(self, language: str) -> bool:
        return language == self.language or language in self.languages


@dataclass(frozen=True)
class SynthesisOptions:
    voice: str
    language: str
    speed: float


class Synthesizer(Protocol):
    def load(self) -> None: ...

    def warm_up(self) -> None: ...

    def voices(self) -> Sequence[VoiceCard]: ...

    def synthesize(self, text: str, options: SynthesisOptions) -> Iterator[Pcm]:
        """Yields the speech of `text` in order, a block per sentence or phrase."""
        ...
