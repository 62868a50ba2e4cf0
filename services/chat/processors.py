"""The engine kinds of the chat service, one small Protocol each.

Engines know nothing of gRPC: the servicer runs them in its thread pool. Speech goes to
and comes from the STT and TTS services over gRPC (`services/chat/upstream.py`); what is
here writes and translates text. Every engine is also a registry `Engine` (`load`,
`warm_up`), so a missing package, model file or server lists its model as unavailable
instead of failing the service.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from speechmesh.speakers import SpeakerEmbedder


@dataclass(frozen=True)
class Message:
    # "system", "user" or "assistant".
    role: str
    content: str


# Called with each piece of the reply as the model writes it; returns True to stop the
# model (the caller left, or the reply is long enough).
OnDelta = Callable[[str], bool]


@dataclass(frozen=True)
class Written:
    # The reply as written (all of it, or what was written before it stopped).
    text: str
    # True when the model ended the reply itself; False when `max_tokens` or `on_delta`
    # stopped it, so its last sentence may be cut short.
    finished: bool


class LanguageModel(Protocol):
    # Tokens the model attends to: prompt and reply together.
    context_tokens: int
    # ISO 639-1 languages the model writes well; None: any. For another language the
    # chat pipeline translates the user's words to English and the reply back.
    languages: frozenset[str] | None

    def load(self) -> None: ...

    def warm_up(self) -> None: ...

    def count_tokens(self, text: str) -> int:
        """The tokens `text` takes in a prompt (an estimate no smaller than the truth)."""
        ...

    def reply(self, messages: Sequence[Message], max_tokens: int, on_delta: OnDelta) -> Written:
        """The assistant's next message after `messages`, at most `max_tokens` tokens,
        each piece passed to `on_delta` as it is written; returns what was written."""
        ...


class Translator(Protocol):
    def load(self) -> None: ...

    def warm_up(self) -> None: ...

    def pairs(self) -> frozenset[tuple[str, str]]:
        """The (source, target) ISO 639-1 pairs it translates directly."""
        ...

    def translate(self, text: str, source: str, target: str) -> str:
        """`text` in `target`; (source, target) is one of `pairs()`."""
        ...


class VoiceMeter(SpeakerEmbedder, Protocol):
    """A speaker embedder the registry can load and warm up: what `preserve_voice` measures
    voices with (`speechmesh/speakers/world.py`)."""

    def warm_up(self) -> None: ...
