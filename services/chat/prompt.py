"""What the language model reads for one turn: the system prompt, the newest history that
fits its context, and the user's message; and how the reply's language is asked for."""

from __future__ import annotations

from collections.abc import Sequence

from services.chat.processors import LanguageModel, Message

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful voice assistant. Your answers are read aloud, so answer in one to "
    "three short, plain sentences, without lists, markup or emoji."
)
SYSTEM_PROMPT_MAX_CHARS = 4000
# Chat templates wrap each message in a few tokens of their own.
_MESSAGE_OVERHEAD_TOKENS = 8

LANGUAGE_NAMES = {
    "en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian", "pt": "Portuguese",
    "ca": "Catalan", "gl": "Galician", "eo": "Esperanto", "nl": "Dutch", "ja": "Japanese", "zh": "Chinese",
    "ru": "Russian", "pl": "Polish", "hi": "Hindi", "ar": "Arabic", "ko": "Korean", "tr": "Turkish",
}  # fmt: skip


def messages(
    model: LanguageModel,
    system_prompt: str,
    history: Sequence[Message],
    user: str,
    reply_tokens: int,
    language: str,
) -> list[Message]:
    """The prompt of one turn: the system prompt (asking for `language` when the model
    writes it), then the newest messages of `history` that leave `reply_tokens` of the
    context free, then the user's message."""
    system = system_prompt or DEFAULT_SYSTEM_PROMPT
    if language != "en" and language in LANGUAGE_NAMES and (model.languages is None or language in model.languages):
        system += f" Always answer in {LANGUAGE_NAMES[language]}."
    budget = model.context_tokens - reply_tokens
    budget -= model.count_tokens(system) + model.count_tokens(user) + 2 * _MESSAGE_OVERHEAD_TOKENS
    kept: list[Message] = []
    for message in reversed(history):
        cost = model.count_tokens(message.content) + _MESSAGE_OVERHEAD_TOKENS
        if cost > budget:
            break
        budget -= cost
        kept.append(message)
    # A history cut before an assistant message would start with an answer to nothing.
    while kept and kept[-1].role != "user":
        kept.pop()
    return [Message("system", system), *reversed(kept), Message("user", user)]
