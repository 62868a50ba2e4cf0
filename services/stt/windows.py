"""Long audio transcribed in windows, so that memory follows the window, not the file.

faster-whisper computes the log-mel features of all the audio it is given at once: about
42 MiB per minute (211 MiB for 5 minutes, 422 MiB for 10, measured with its
FeatureExtractor), so three hours would take 7.6 GiB. Audio longer than a window is cut
into windows that end in the quietest half second of their last 30 s (a pause between
words, where a cut loses nothing), each window is recognized on its own, and the
transcripts are joined with their times moved to where the window starts. The language
detected in the first window holds for the others, as it does when Whisper reads a file
whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from services.stt.recognizer import SAMPLE_RATE, RecognitionOptions, Segment, Transcript, Word
from speechmesh.common.cancel import checkpoint

# Where a window may end: the quietest `_PAUSE_SECONDS` in its last `_SEARCH_SECONDS`.
_SEARCH_SECONDS = 30.0
_PAUSE_SECONDS = 0.5
_HOP_SECONDS = 0.1


def spans(audio: np.ndarray, window_seconds: float) -> list[tuple[int, int]]:
    """Sample ranges covering `audio` (16 kHz) in order, none longer than the window."""
    window = round(window_seconds * SAMPLE_RATE)
    cuts, start = [], 0
    while len(audio) - start > window:
        end = start + window
        cut = _quietest(audio, max(start + window // 2, end - round(_SEARCH_SECONDS * SAMPLE_RATE)), end)
        cuts.append((start, cut))
        start = cut
    cuts.append((start, len(audio)))
    return cuts


def _quietest(audio: np.ndarray, low: int, high: int) -> int:
    """The middle of the quietest pause between samples `low` and `high`."""
    pause, hop = round(_PAUSE_SECONDS * SAMPLE_RATE), round(_HOP_SECONDS * SAMPLE_RATE)
    starts = np.arange(low, high - pause + 1, hop)
    energy = np.array([float(np.mean(np.square(audio[s : s + pause]))) for s in starts])
    return int(starts[int(np.argmin(energy))]) + pause // 2


def recognize_in_windows(
    recognize: Callable[[np.ndarray, RecognitionOptions], Transcript],
    audio: np.ndarray,
    options: RecognitionOptions,
    window_seconds: float,
) -> Transcript:
    """`recognize` over the whole of `audio`, one window at a time."""
    parts: list[Transcript] = []
    offsets: list[float] = []
    for start, end in spans(audio, window_seconds):
        checkpoint()
        language = options.language or (parts[0].language if parts else "")
        parts.append(recognize(audio[start:end], replace(options, language=language)))
        offsets.append(start / SAMPLE_RATE)
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return Transcript(
        text=" ".join(part.text for part in parts if part.text),
        language=first.language,
        language_probability=first.language_probability,
        duration=len(audio) / SAMPLE_RATE,
        segments=tuple(_moved(s, offset) for part, offset in zip(parts, offsets, strict=True) for s in part.segments),
    )


def _moved(segment: Segment, seconds: float) -> Segment:
    return replace(
        segment,
        start=segment.start + seconds,
        end=segment.end + seconds,
        words=tuple(_moved_word(word, seconds) for word in segment.words),
    )


def _moved_word(word: Word, seconds: float) -> Word:
    return replace(word, start=word.start + seconds, end=word.end + seconds)
