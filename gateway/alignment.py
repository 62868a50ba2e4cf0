"""Word timings for synthesized speech: the known text aligned onto Whisper's word times.

No installed TTS engine reports durations (the Piper and Kokoro exports have no
duration output), so the gateway transcribes its own synthesized audio with word
timestamps and aligns the text it asked for onto the recognized words (difflib over
normalised words). Matched words take Whisper's times; a run of words Whisper heard
differently ("5" for "five") shares the time span of what it heard, by character
length; words it missed share the gap between their neighbours. Every input word gets
a time, in order, inside the audio. Accuracy is measured by bench/tts_alignment.py.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

_NOT_WORD = re.compile(r"[^\w']+")


@dataclass(frozen=True)
class TimedWord:
    word: str
    start: float
    end: float


def _norm(word: str) -> str:
    return _NOT_WORD.sub("", word.lower())


def _spread(words: Sequence[str], start: float, end: float) -> list[TimedWord]:
    """`words` laid over [start, end] in proportion to their length."""
    weights = [max(len(_norm(word)), 1) for word in words]
    total = sum(weights)
    timed, at = [], start
    for word, weight in zip(words, weights, strict=True):
        step = (end - start) * weight / total
        timed.append(TimedWord(word, round(at, 3), round(at + step, 3)))
        at += step
    return timed


def align(text: str, recognized: Sequence[TimedWord], duration: float) -> list[TimedWord]:
    """A TimedWord for every whitespace-separated word of `text`, times in seconds."""
    words = text.split()
    heard = [word for word in recognized if _norm(word.word)]
    matcher = difflib.SequenceMatcher(None, [_norm(w) for w in words], [_norm(w.word) for w in heard], autojunk=False)
    timed: list[TimedWord] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            timed += [TimedWord(words[i1 + k], heard[j1 + k].start, heard[j1 + k].end) for k in range(i2 - i1)]
        elif tag == "replace":
            timed += _spread(words[i1:i2], heard[j1].start, heard[j2 - 1].end)
        elif tag == "delete":
            before = timed[-1].end if timed else 0.0
            after = heard[j1].start if j1 < len(heard) else duration
            timed += _spread(words[i1:i2], before, max(after, before))
    return timed
