"""Text handling before synthesis: sentence splitting and language identification."""

from __future__ import annotations

import pysbd
import pytest

from services.tts.language import detect_language
from services.tts.registry import build_engines
from services.tts.settings import TtsSettings
from speechmesh.common import sentences
from speechmesh.common.sentences import (
    FIRST_PIECE_CHARS,
    MAX_CHARS,
    WINDOW_CHARS,
    first_cut,
    iter_sentences,
    split_sentences,
)

KOKORO = ("en", "ja", "fr", "it", "es")


def test_sentences_respect_abbreviations_and_quotes() -> None:
    text = 'Dr. Smith arrived at 5 p.m. yesterday. He said: "Hi!" Then he left... Did he? Yes.'
    assert split_sentences(text) == [
        "Dr. Smith arrived at 5 p.m. yesterday.",
        'He said: "Hi!"',
        "Then he left...",
        "Did he?",
        "Yes.",
    ]


def test_japanese_and_unknown_languages_split_too() -> None:
    assert split_sentences("こんにちは。元気ですか？はい。", "ja") == ["こんにちは。", "元気ですか？", "はい。"]  # noqa: RUF001 - Japanese punctuation on purpose
    assert split_sentences("Hyvää päivää. Kiitos paljon.", "fi") == ["Hyvää päivää.", "Kiitos paljon."]


def test_run_on_text_is_cut_at_soft_breaks_under_the_limit() -> None:
    text = ", ".join(["a list of things"] * 60) + "."
    pieces = split_sentences(text)
    assert len(pieces) > 1 and all(len(piece) <= MAX_CHARS for piece in pieces)
    assert " ".join(pieces).replace(" ", "") == text.replace(" ", "")
    assert all(piece.endswith(",") for piece in pieces[:-1])


def test_a_stream_starts_with_a_short_piece() -> None:
    text = "Speech services are judged by how fast they answer the very first request. Then more."
    head, rest, last = split_sentences(text, first_piece=FIRST_PIECE_CHARS)
    assert len(head) <= FIRST_PIECE_CHARS and f"{head} {rest}" == text.split(". ")[0] + "."
    assert last == "Then more."
    assert split_sentences("Short one. Then more.", first_piece=FIRST_PIECE_CHARS) == ["Short one.", "Then more."]
    head, *_ = split_sentences(text, first_piece=20)
    assert head == "Speech services are"
    assert split_sentences(text, first_piece=0)[0] == text.split(". ")[0] + "."
    japanese = "友達と一緒に駅の近くに新しくできたレストランへ行って、そのあとで話題の映画を見に行きました。"
    head, rest = split_sentences(japanese, "ja", first_piece=20)
    assert head + rest == japanese, "no space is put into Japanese"


def test_a_first_piece_ends_at_a_clause_break_within_its_limit() -> None:
    text = "Well, speech services are judged by how fast they answer the very first request."
    assert split_sentences(text, first_piece=10)[:2] == ["Well,", text.removeprefix("Well, ")]
    # Digit groups and clock times are no clause breaks.
    assert first_cut("We sold 1,000 copies by 12:30 today and more after lunch.", 22) == "We sold 1,000 copies"


def test_long_text_is_segmented_a_window_at_a_time(monkeypatch) -> None:
    text = " ".join(f"Sentence {i} was read by Dr. Smith at 5 p.m. on the dot, she said." for i in range(80))
    whole = [piece.strip() for piece in pysbd.Segmenter(language="en", clean=False).segment(text)]
    assert len(text) > 4 * WINDOW_CHARS and split_sentences(text) == whole
    segmenter = sentences._segmenter("en")
    lengths: list[int] = []
    segment = segmenter.segment
    monkeypatch.setattr(segmenter, "segment", lambda window: lengths.append(len(window)) or segment(window))
    assert next(iter_sentences(text)) == whole[0]
    assert lengths == [WINDOW_CHARS], "the first sentence is ready after one window"


def test_each_model_gets_its_first_piece_from_the_settings() -> None:
    engines = build_engines(TtsSettings())
    # The neural engines, whose time grows with the audio they make, start with shorter pieces.
    assert max(engines.first_piece("kokoro"), engines.first_piece("piper")) < engines.first_piece("espeak")
    assert engines.first_piece("espeak") == FIRST_PIECE_CHARS
    engines = build_engines(TtsSettings(stream_first_piece_chars={"piper": 0}))
    assert (engines.first_piece("piper"), engines.first_piece("kokoro")) == (0, FIRST_PIECE_CHARS)
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        TtsSettings(stream_first_piece_chars={"kokoro": -1})


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hello from speechmesh! This is a test.", "en"),
        ("Bonjour tout le monde, comment allez-vous?", "fr"),
        ("El tren sale de la estación a las ocho.", "es"),
        ("Ciao, come stai oggi?", "it"),
        ("こんにちは、元気ですか", "ja"),
        # Too short to tell: the fallback.
        ("OK", "en"),
        ("Hola", "en"),
    ],
)
def test_language_among_what_the_voices_speak(text: str, language: str) -> None:
    assert detect_language(text, KOKORO, "en") == language


def test_one_candidate_needs_no_model_and_no_candidate_falls_back() -> None:
    assert detect_language("Bonjour tout le monde", ("en",), "en") == "en"
    assert detect_language("Guten Tag, wie geht es Ihnen?", ("fr", "es"), "fr") in ("fr", "es")
