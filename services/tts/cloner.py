"""The VoiceCloner interface: speak text in the voice of a reference recording.

A cloner takes the reference as PCM and returns PCM plus how close the result came:
the d-vector cosine similarity of the output to the reference, next to that of the
built-in voice it started from, so a caller sees what the cloning added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from speechmesh.common.audio.pcm import Pcm


@dataclass(frozen=True)
class CloneResult:
    pcm: Pcm
    # The built-in voice the speech was synthesized with before adaptation.
    base_model: str
    base_voice: str
    language: str
    # d-vector cosine similarity to the reference: of the output, and of the base voice.
    similarity: float
    base_similarity: float


class VoiceCloner(Protocol):
    def load(self) -> None: ...

    def warm_up(self) -> None: ...

    def clone(self, reference: Pcm, text: str, language: str, speed: float) -> CloneResult:
        """`language` "" = detected from the text."""
        ...
