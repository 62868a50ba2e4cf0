"""Splitting text into sentences, so long text streams sentence by sentence.

pysbd (rule-based, no model) knows abbreviations, decimals and quotes in two dozen
languages; others use its English rules. A "sentence" longer than MAX_CHARS (a list,
a run-on without punctuation) is cut at the last comma, semicolon or colon in the second half
of the limit (else at the last space), so the first audio never waits for a whole paragraph.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Any

MAX_CHARS = 300
# A stream's first piece: short, so the first audio leaves after a few words instead of
# a whole sentence. Per model in TtsSettings.stream_first_piece_chars; this is the default.
FIRST_PIECE_CHARS = 40
# pysbd's languages (its ISO 639-1 codes).
_PYSBD = {
    "en", "hi", "mr", "zh", "es", "am", "ar", "el", "ru", "hy", "bg", "it", "pl", "fa", "nl", "da", "fr", "my",
    "ur", "de", "kk", "sk", "ja",
}  # fmt: skip
_CLAUSE_BREAK = re.compile(r"[,;:\u3001\uff0c]\s?")
_WORD_BREAK = re.compile(r"\s")
_lock = threading.Lock()


@functools.cache
def _segmenter(language: str) -> Any:
    import pysbd

    return pysbd.Segmenter(language=language, clean=False)


def split_sentences(text: str, language: str = "en", *, first_piece: int = 0) -> list[str]:
    """Non-empty sentences of `text`, in order, each at most MAX_CHARS long; with
    `first_piece` (streaming), a first sentence well over that many characters is cut
    after at most `first_piece`, at a clause break or else a word break."""
    segmenter = _segmenter(language if language in _PYSBD else "en")
    with _lock:  # pysbd segmenters keep state while segmenting
        sentences = segmenter.segment(text)
    pieces = [piece for sentence in sentences for piece in bounded(sentence.strip(), MAX_CHARS) if piece]
    # "Well over": a sentence only a word or two longer is not worth a break in its melody.
    if first_piece and pieces and len(pieces[0]) > first_piece + 15:
        head = bounded(pieces[0], first_piece)[0]
        # The rest as it was written: rejoining cut pieces would put spaces into Japanese.
        pieces[:1] = [head, pieces[0][len(head) :].strip()]
    return pieces


def bounded(sentence: str, limit: int) -> list[str]:
    """`sentence` cut into pieces of at most `limit` characters, at clause or word breaks."""
    if limit < 1:
        raise ValueError(f"a piece holds at least one character, not {limit}")
    pieces: list[str] = []
    while len(sentence) > limit:
        # At a clause break in the second half of the window, else at the last space.
        clauses = [match.end() for match in _CLAUSE_BREAK.finditer(sentence, limit // 2, limit)]
        words = [match.end() for match in _WORD_BREAK.finditer(sentence, 0, limit)]
        cut = (clauses or words or [limit])[-1]
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return [*pieces, sentence]
