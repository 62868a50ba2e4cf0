"""Splitting text into sentences, so long text streams sentence by sentence.

pysbd (rule-based, no model) knows abbreviations, decimals and quotes in two dozen
languages; others use its English rules. A "sentence" longer than MAX_CHARS (a list,
a run-on without punctuation) is cut at the last comma, semicolon or space before the
limit, so the first audio never waits for a whole paragraph.
"""

from __future__ import annotations

import functools
import re
import threading

MAX_CHARS = 300
# pysbd's languages (its ISO 639-1 codes).
_PYSBD = {
    "en", "hi", "mr", "zh", "es", "am", "ar", "el", "ru", "hy", "bg", "it", "pl", "fa", "nl", "da", "fr", "my",
    "ur", "de", "kk", "sk", "ja",
}  # fmt: skip
_SOFT_BREAK = re.compile(r"[,;:\u3001\uff0c]\s|\s")
_lock = threading.Lock()


@functools.cache
def _segmenter(language: str):
    import pysbd

    return pysbd.Segmenter(language=language, clean=False)


def split_sentences(text: str, language: str = "en") -> list[str]:
    """Non-empty sentences of `text`, in order, each at most MAX_CHARS long."""
    segmenter = _segmenter(language if language in _PYSBD else "en")
    with _lock:  # pysbd segmenters keep state while segmenting
        sentences = segmenter.segment(text)
    return [piece for sentence in sentences for piece in _bounded(sentence.strip()) if piece]


def _bounded(sentence: str) -> list[str]:
    pieces: list[str] = []
    while len(sentence) > MAX_CHARS:
        breaks = [match.end() for match in _SOFT_BREAK.finditer(sentence, 0, MAX_CHARS)]
        cut = breaks[-1] if breaks else MAX_CHARS
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return [*pieces, sentence]
