"""What a recording of people speaking different languages costs and yields: each dialog
transcribed with its language detected (each turn in its own language, speech left without
words decoded alone: services/stt/engines/whisper_chunks.py) against the same dialog with
the first speaker's language given (no detection: the baseline), in the same run.

    .venv/bin/python bench/stt_languages.py [--rounds 3]

Dialogs of real people (tests/real_speech.py): Asterisk prompts by Allison (en), June (fr)
and Carlo (it), six alternating turns at 8 kHz and 16 kHz, and one language alone. Per
dialog: the fastest of `--rounds` transcriptions (Whisper base, the service's settings, word
times on) each way and their ratio, the turns left without a word, the turns whose segments
carry the turn's language, and the WER (jiwer) against the Asterisk transcripts.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.stt.recognizer import RecognitionOptions, Transcript  # noqa: E402
from services.stt.registry import build_engines  # noqa: E402
from services.stt.settings import SttSettings  # noqa: E402
from tests import real_speech  # noqa: E402
from tests.real_speech import Dialog  # noqa: E402

DIALOGS = {
    "en+it": ("allison", "carlo") * 3,
    "en+fr": ("allison", "june") * 3,
    "it alone": ("carlo",) * 4,
}


def normalized(text: str) -> str:
    return " ".join(re.sub(r"[^\w']+", " ", text.lower()).split())


def fastest(recognize, audio, options: RecognitionOptions, rounds: int) -> tuple[float, Transcript]:  # type: ignore[no-untyped-def]
    best, transcript = float("inf"), None
    for _ in range(rounds):
        started = time.perf_counter()
        transcript = recognize(audio, options)
        best = min(best, time.perf_counter() - started)
    assert transcript is not None
    return best, transcript


def turns_heard(dialog: Dialog, transcript: Transcript) -> tuple[int, int]:
    """(turns with at least one word, turns whose words are all in segments of the turn's language)."""
    heard = in_language = 0
    for turn in dialog.turns:
        inside = [
            segment.language
            for segment in transcript.segments
            for word in segment.words
            if turn.start - 0.1 <= (word.start + word.end) / 2 <= turn.end + 0.1
        ]
        heard += bool(inside)
        in_language += bool(inside) and set(inside) == {turn.language}
    return heard, in_language


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import jiwer

    settings = SttSettings()
    engines = build_engines(settings)
    engines.load()
    _, recognizer = engines.recognizers.get(settings.default_model)
    print(
        f"{'dialog':9} {'band':6} {'turns':>5}  {'given s':>8} {'detected s':>10} {'ratio':>5}"
        "  given: heard  WER  | detected: heard  in language  WER"
    )
    for name, voices in DIALOGS.items():
        for band in ("narrow", "wide"):
            dialog = real_speech.dialog(voices, band, name)
            audio = dialog.audio()
            first = dialog.turns[0].language
            given, baseline = fastest(
                recognizer.recognize, audio, RecognitionOptions(language=first, word_timestamps=True), args.rounds
            )
            detected, transcript = fastest(
                recognizer.recognize, audio, RecognitionOptions(word_timestamps=True), args.rounds
            )
            heard, in_language = turns_heard(dialog, transcript)
            heard_given, _ = turns_heard(dialog, baseline)
            reference = normalized(" ".join(turn.text for turn in dialog.turns))
            wer = jiwer.wer(reference, normalized(transcript.text))
            wer_given = jiwer.wer(reference, normalized(baseline.text))
            turns = len(dialog.turns)
            print(
                f"{name:9} {band:6} {turns:5}  {given:8.2f} {detected:10.2f} {detected / given:5.2f}"
                f"  {heard_given}/{turns}  {wer_given:.3f}  |  {heard}/{turns}  {in_language}/{turns}  {wer:.3f}"
            )


if __name__ == "__main__":
    main()
