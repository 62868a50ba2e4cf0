"""Which language a text is written in, among the languages a model's voices speak.

py3langid (a naive Bayes model of byte n-grams, shipped inside the package) ranks all
its 97 languages; restricting the ranking to the candidates the model can speak makes
short texts far more reliable ("Hello from speechmesh!" is English among en/fr/es/it/ja,
but Tagalog among everything). Below MIN_CONFIDENCE the text is too short to tell
("OK", "Hola") and the caller's fallback wins.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection

MIN_CONFIDENCE = 0.5


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE)


def warm_up() -> None:
    """Loads the model (about 0.5 s) so the first request does not pay for it."""
    _identifier()


def detect_language(text: str, candidates: Collection[str], fallback: str) -> str:
    """The most likely of `candidates` for `text`, or `fallback` when unsure or not a candidate."""
    if len(candidates) < 2:
        return next(iter(candidates), fallback)
    # rank() gives log-probabilities for every language; softmax over the candidates only.
    scores = {language: score for language, score in _identifier().rank(text) if language in candidates}
    if not scores:
        return fallback
    best = max(scores, key=scores.__getitem__)
    total = sum(math.exp(score - scores[best]) for score in scores.values())
    return best if 1 / total >= MIN_CONFIDENCE else fallback
