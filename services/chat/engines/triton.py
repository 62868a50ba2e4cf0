"""A LanguageModel whose model runs in a Triton Inference Server (runtime = triton).

The context size and languages come from the model at load; a reply streams back a piece
per response as Triton's decoupled model writes it (services/chat/triton_model.py is the
other side), each passed to `on_delta` as it arrives. When `on_delta` returns True (the
caller left, or has the reply it needs) the stream is closed, which cancels the request in
Triton, and the model there stops writing. Tokens are counted here, as the in-process
engine counts them (an estimate, no tokenizer): the chat pipeline counts on its event loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

from services.chat.engines.llamacpp import estimated_tokens
from services.chat.processors import Message, OnDelta, Written
from speechmesh.common.errors import UpstreamUnavailable
from speechmesh.common.settings import TritonSettings
from speechmesh.triton import wire
from speechmesh.triton.remote import TritonModel


class TritonLanguageModel:
    def __init__(self, model: str, settings: TritonSettings) -> None:
        self._remote = TritonModel(model, settings.address(model), settings.ready_timeout_seconds)
        self.context_tokens = 0
        self.languages: frozenset[str] | None = None

    def load(self) -> None:
        self._remote.wait_ready()
        (reply,) = [wire.unpack(piece[wire.REPLY]) for piece in self._remote.stream(_request(method="describe"))]
        self.context_tokens = int(reply["context_tokens"])
        self.languages = None if reply["languages"] is None else frozenset(reply["languages"])

    def warm_up(self) -> None:
        """Nothing: Triton warmed the engine when it loaded the model."""

    def count_tokens(self, text: str) -> int:
        return estimated_tokens(text)

    def reply(self, messages: Sequence[Message], max_tokens: int, on_delta: OnDelta) -> Written:
        request = _request(
            method="reply",
            messages=[{"role": m.role, "content": m.content} for m in messages],
            max_tokens=max_tokens,
        )
        pieces: list[str] = []
        written: Written | None = None
        # Leaving the loop early closes the stream: Triton cancels the request.
        with contextlib.closing(self._remote.stream(request)) as responses:
            for response in responses:
                reply = wire.unpack(response[wire.REPLY])
                if "delta" not in reply:
                    written = Written(str(reply["text"]), bool(reply["finished"]))
                    continue
                pieces.append(str(reply["delta"]))
                if on_delta(pieces[-1]):
                    return Written("".join(pieces), finished=False)
        if written is None:
            name = self._remote.name
            raise UpstreamUnavailable(f"Model '{name}' on Triton closed a reply without its final message.")
        return written


def _request(**fields: object) -> dict[str, np.ndarray]:
    return {wire.REQUEST: wire.pack(fields)}
