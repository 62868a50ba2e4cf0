"""Long audio is transcribed window by window, cut at pauses, and joined seamlessly."""

from __future__ import annotations

import numpy as np
import pytest

from services.stt.recognizer import SAMPLE_RATE, RecognitionOptions, Segment, Transcript, Word
from services.stt.windows import recognize_in_windows, spans
from tests.conftest import word_error_rate


def tone_with_pauses(seconds: float, pauses: list[float]) -> np.ndarray:
    """A loud tone with half-second silences starting at `pauses` (seconds)."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    audio = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    for start in pauses:
        audio[round(start * SAMPLE_RATE) : round((start + 0.5) * SAMPLE_RATE)] = 0
    return audio


def test_windows_end_in_the_pause_nearest_their_end() -> None:
    audio = tone_with_pauses(700, pauses=[40.0, 285.0, 560.0])
    cuts = spans(audio, window_seconds=300)
    ends = [end / SAMPLE_RATE for _, end in cuts]
    # Each window ends inside the last pause before its 300 s, and the next starts there.
    assert len(cuts) == 3 and 285.0 < ends[0] < 285.5 and 560.0 < ends[1] < 560.5 and ends[2] == 700.0
    assert [start for start, _ in cuts] == [0, cuts[0][1], cuts[1][1]]
    assert spans(audio[: 200 * SAMPLE_RATE], window_seconds=300) == [(0, 200 * SAMPLE_RATE)]


def test_windows_are_recognized_alone_and_joined_in_time() -> None:
    audio = tone_with_pauses(650, pauses=[290.0, 580.0])
    seen: list[tuple[float, str]] = []

    def recognize(window: np.ndarray, options: RecognitionOptions) -> Transcript:
        seen.append((len(window) / SAMPLE_RATE, options.language))
        word = Word(text="word", start=1.0, end=1.5, probability=0.9)
        return Transcript(
            text=f"part {len(seen)}.",
            language="fr",
            language_probability=0.8,
            duration=len(window) / SAMPLE_RATE,
            segments=(Segment(start=1.0, end=2.0, text=f"part {len(seen)}.", words=(word,)),),
        )

    joined = recognize_in_windows(recognize, audio, RecognitionOptions(word_timestamps=True), 300)
    # The first window's detected language holds for the rest.
    assert [language for _, language in seen] == ["", "fr", "fr"]
    assert all(seconds <= 300 for seconds, _ in seen)
    assert joined.text == "part 1. part 2. part 3."
    assert (joined.language, joined.duration) == ("fr", 650.0)
    starts = [segment.start for segment in joined.segments]
    assert starts[0] == 1.0 and 291.0 < starts[1] < 291.5 and 581.0 < starts[2] < 581.5
    assert [segment.words[0].start for segment in joined.segments] == starts


@pytest.mark.slow
def test_whisper_in_windows_hears_what_it_hears_whole(speak, tiny_en) -> None:
    from speechmesh.common.audio.resample import resample

    sentences = [
        "The museum opens at nine and closes early on Sundays.",
        "Please leave your bags at the front desk before the tour.",
        "Our guide will meet you beside the large map in the hall.",
    ] * 3
    pause = np.zeros(SAMPLE_RATE // 2, np.float32)
    audio = np.concatenate([part for s in sentences for part in (resample(speak(s), SAMPLE_RATE).samples, pause)])
    options = RecognitionOptions(language="en", word_timestamps=True, vad_filter=False)
    windowed = recognize_in_windows(tiny_en.recognize, audio, options, window_seconds=len(audio) / SAMPLE_RATE / 3)
    assert word_error_rate(" ".join(sentences), windowed.text) <= 0.15, windowed.text
    starts = [word.start for word in windowed.words]
    assert starts == sorted(starts) and starts[-1] > 2 * len(audio) / SAMPLE_RATE / 3
