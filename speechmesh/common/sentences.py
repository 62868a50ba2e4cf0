"""Splitting text into sentences, so long text streams sentence by sentence.

pysbd (rule-based, no model) knows abbreviations, decimals and quotes in two dozen
languages; others use its English rules. A "sentence" longer than MAX_CHARS (a list,
a run-on without punctuation) is cut at the last comma, semicolon or colon in the second half
of the limit (else at the last space), so the first audio never waits for a whole paragraph.

pysbd's cost grows faster than the text (0.5 ms for 200 characters, 31 ms for 5,000,
1.1 s for 50,000 on 2 cores), so `iter_sentences` reads the text a window at a time: the
first sentence is ready after one window, whatever follows it.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from typing import Any

MAX_CHARS = 300
# A stream's first piece: short, so the first audio leaves after a few words instead of
# a whole sentence. Per model in TtsSettings.stream_first_piece_chars; this is the default.
FIRST_PIECE_CHARS = 40
# A first sentence at most this much longer than the first piece stays whole: a word or two
# more is not worth a break in its melody.
FIRST_PIECE_SLACK = 15
# Characters segmented at a time: ~2.5 ms of pysbd, linear up to here.
WINDOW_CHARS = 1000
# pysbd's languages (its ISO 639-1 codes).
_PYSBD = {
    "en", "hi", "mr", "zh", "es", "am", "ar", "el", "ru", "hy", "bg", "it", "pl", "fa", "nl", "da", "fr", "my",
    "ur", "de", "kk", "sk", "ja",
}  # fmt: skip
# A comma, semicolon or colon before a space ("1,000" and "12:30" are no breaks), or an
# ideographic comma.
_CLAUSE_BREAK = re.compile(r"[,;:](?=\s)|[\u3001\uff0c]")
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
    return list(iter_sentences(text, language, first_piece=first_piece))


def iter_sentences(text: str, language: str = "en", *, first_piece: int = 0) -> Iterator[str]:
    """`split_sentences`, each sentence as soon as its window of the text is segmented."""
    pieces = (piece for sentence in _segments(text, language) for piece in bounded(sentence.strip(), MAX_CHARS))
    pieces = (piece for piece in pieces if piece)
    first = next(pieces, None)
    if first is None:
        return
    if first_piece and len(first) > first_piece + FIRST_PIECE_SLACK:
        head = first_cut(first, first_piece)
        # The rest as it was written: rejoining cut pieces would put spaces into Japanese.
        yield head
        first = first[len(head) :].strip()
    yield first
    yield from pieces


def _segments(text: str, language: str) -> Iterator[str]:
    """pysbd's sentences of `text`, a window at a time: a window's last sentence may go on
    past it, so the next window starts there."""
    segmenter = _segmenter(language if language in _PYSBD else "en")
    start = 0
    while start < len(text):
        window = text[start : start + WINDOW_CHARS]
        with _lock:  # pysbd segmenters keep state while segmenting
            sentences = segmenter.segment(window)
        if start + len(window) < len(text):
            # Its last sentence may go on; a run-on filling the window is cut where `bounded` would.
            sentences = sentences[:-1] if len(sentences) > 1 else [window[: _cut(window, len(window))]]
        consumed = "".join(sentences)
        if not window.startswith(consumed) or not consumed:
            # pysbd changed the text (it should not with clean=False): no offsets to go on
            # from, so the rest is segmented in one go.
            with _lock:
                yield from segmenter.segment(text[start:])
            return
        yield from sentences
        start += len(consumed)


def first_cut(sentence: str, limit: int) -> str:
    """The start of `sentence` a stream speaks first: up to its last clause break (comma,
    semicolon, colon) within `limit` characters, else its last word break there."""
    clauses = _clause_breaks(sentence, 1, limit)
    if clauses:
        return sentence[: clauses[-1]].strip()
    return bounded(sentence, limit)[0]


def bounded(sentence: str, limit: int) -> list[str]:
    """`sentence` cut into pieces of at most `limit` characters, at clause or word breaks."""
    if limit < 1:
        raise ValueError(f"a piece holds at least one character, not {limit}")
    pieces: list[str] = []
    while len(sentence) > limit:
        cut = _cut(sentence, limit)
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return [*pieces, sentence]


def _cut(sentence: str, limit: int) -> int:
    """Where a piece of at most `limit` characters of `sentence` ends: at a clause break in
    the second half of the window, else at the last space, else at the limit."""
    words = [match.end() for match in _WORD_BREAK.finditer(sentence, 0, limit)]
    return (_clause_breaks(sentence, limit // 2, limit) or words or [limit])[-1]


def _clause_breaks(sentence: str, start: int, limit: int) -> list[int]:
    """Where a piece may end after a clause break found from `start`, at most `limit` in."""
    # One more character, so that the lookahead sees the space after a break at the limit.
    return [match.end() for match in _CLAUSE_BREAK.finditer(sentence, start, limit + 1) if match.end() <= limit]
