"""Whole sentences out of a reply that arrives in pieces, so each can be spoken as soon as
it is written, and the reply's end cut at a sentence boundary when the model was stopped."""

from __future__ import annotations

import re

from speechmesh.common.sentences import split_sentences

_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019)\]]*$")


class SentenceCutter:
    def __init__(self, language: str) -> None:
        self._language = language
        self._pending = ""
        self._spoken = False

    def feed(self, piece: str) -> list[str]:
        """The sentences `piece` completes (none while the current one goes on)."""
        self._pending += piece
        sentences = split_sentences(self._pending, self._language)
        if len(sentences) < 2:
            return []
        # The last one may go on: it waits for the next piece.
        self._pending = self._pending[self._pending.rfind(sentences[-1]) :]
        self._spoken = True
        return sentences[:-1]

    def end(self, finished: bool) -> list[str]:
        """The rest. When the model was stopped (`finished` False) an unfinished last
        sentence is dropped, or, when nothing before it was whole, cut after its last
        whole word: a reply never ends mid-word."""
        rest = split_sentences(self._pending, self._language)
        self._pending = ""
        if finished or not rest or _SENTENCE_END.search(rest[-1]):
            return rest
        if len(rest) > 1 or self._spoken:
            return rest[:-1]
        words = rest[0].rsplit(maxsplit=1)
        return [words[0].rstrip(",;:") + "..."] if len(words) == 2 else []
