"""Which language each stretch of speech is in, when the caller did not say.

Whisper detects one language per 30 s of audio it encodes. A chunk of voice-activity clips
packed to 30 s can hold two people speaking two languages, and decoded in the likelier one
the other's turns come back translated, or with no words at all: Asterisk's Allison (en)
and Carlo (it) in six alternating 2-5 s turns gave `it` at 0.86, and every English turn
was empty. The same detection on each turn alone was 0.98-0.998 right.

So a chunk whose language Whisper is not sure of (its likeliest below `SURE`) is looked at
clip by clip: each clip of at least `CLIP_SECONDS` is encoded alone and given the likeliest
of the chunk's candidate languages (those Whisper gave at least `CANDIDATE` on the whole
chunk: on a 1 s clip alone Italian read as Spanish at 0.76); shorter clips keep the
language of the clip before them. A clip leaves the chunk's language only when it is sure
of its own (`SWITCH`). Single-language speech is detected sure (0.95-1.0 on the tests'
recordings) and is never split, so it is transcribed exactly as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SURE = 0.9
CANDIDATE = 0.05
SWITCH = 0.6
CLIP_SECONDS = 1.0


@dataclass(frozen=True)
class Detected:
    """Whisper's language probabilities for a piece of audio, likeliest first."""

    ranked: tuple[tuple[str, float], ...]

    @property
    def language(self) -> str:
        return self.ranked[0][0]

    @property
    def probability(self) -> float:
        return self.ranked[0][1]

    @property
    def sure(self) -> bool:
        return self.probability >= SURE

    def candidates(self) -> tuple[str, ...]:
        return tuple(language for language, probability in self.ranked if probability >= CANDIDATE)

    def choice(self, among: Sequence[str], otherwise: str) -> tuple[str, float]:
        """The likeliest of `among`, if it is sure enough to differ from `otherwise`."""
        scores = dict(self.ranked)
        best = max(among, key=lambda language: scores.get(language, 0.0))
        if best != otherwise and scores.get(best, 0.0) < SWITCH:
            return otherwise, scores.get(otherwise, 0.0)
        return best, scores.get(best, 0.0)


def clip_languages(
    chunk: Detected, durations: Sequence[float], detect: Sequence[Detected | None]
) -> list[tuple[str, float]]:
    """A (language, probability) per clip of an unsure chunk: `detect[i]` is clip i's own
    detection, None for a clip shorter than CLIP_SECONDS (not encoded alone)."""
    among = chunk.candidates()
    chosen: list[tuple[str, float]] = []
    for seconds, detected in zip(durations, detect, strict=True):
        if detected is None or seconds < CLIP_SECONDS:
            chosen.append(chosen[-1] if chosen else (chunk.language, chunk.probability))
        else:
            chosen.append(detected.choice(among, chunk.language))
    # Short clips at the start take the language of the first clip that was detected.
    first_detected = next((i for i, d in enumerate(detect) if d is not None), None)
    if first_detected is not None:
        for i in range(first_detected):
            chosen[i] = chosen[first_detected]
    return chosen
