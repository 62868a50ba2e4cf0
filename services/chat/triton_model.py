"""The Triton side of a chat language model: a decoupled python-backend model that writes replies.

`deploy/triton/models/<model>/1/model.py` names the model; the engine is built by this
service's registry from the same settings (SPEECHMESH_CHAT_* in Triton's environment) as
in-process, so the replies are the same. Requests (wire.REQUEST JSON):
`{"method": "describe"}` -> one reply `{"context_tokens", "languages"}` (languages null: any);
`{"method": "reply", "messages": [{"role", "content"}], "max_tokens"}` -> one response per
piece as the model writes it, REPLY `{"delta"}`, then one REPLY `{"text", "finished"}` (the
engine's Written).

The engine calls back with each piece (`on_delta`) from inside its own blocking call, and a
decoupled model answers from a generator: the call runs in a thread of its own and hands the
pieces over a queue. Stopping: the engine's `on_delta` returns True once Triton says the
request was cancelled (the caller left or had enough), or once hosting has stopped taking
pieces, so the model stops writing within a token instead of finishing the reply unread.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from typing import Any

from services.chat.processors import LanguageModel, Message, Written
from services.chat.registry import build_engines
from services.chat.settings import ChatSettings
from speechmesh.common.cancel import checkpoint
from speechmesh.common.errors import Cancelled, InvalidArgument
from speechmesh.triton import wire
from speechmesh.triton.hosting import HostedModel, Tensors, in_process


class WriterModel(HostedModel):
    def setup(self, name: str, parameters: dict[str, str]) -> None:
        settings = in_process(ChatSettings, engines=[name], default_model=name)
        registry = build_engines(settings).language_models
        registry.load()
        self.engine: LanguageModel = registry.get(name)[1]

    def pieces(self, inputs: Tensors) -> Iterator[Tensors]:
        request = wire.unpack(inputs[wire.REQUEST])
        method = request.get("method")
        if method == "describe":
            languages = None if self.engine.languages is None else sorted(self.engine.languages)
            yield {wire.REPLY: wire.pack({"context_tokens": self.engine.context_tokens, "languages": languages})}
            return
        if method != "reply":
            raise InvalidArgument(f"Unknown method {method!r}.")
        messages = [Message(str(m["role"]), str(m["content"])) for m in request["messages"]]
        for item in self._written(messages, int(request["max_tokens"])):
            if isinstance(item, Written):
                yield {wire.REPLY: wire.pack({"text": item.text, "finished": item.finished})}
            else:
                yield {wire.REPLY: wire.pack({"delta": item})}

    def _written(self, messages: list[Message], max_tokens: int) -> Iterator[str | Written]:
        """The reply's pieces as the engine writes them, then its Written."""
        handed: queue.Queue[str | Written | BaseException] = queue.Queue()
        left = threading.Event()

        def on_delta(piece: str) -> bool:
            handed.put(piece)
            return left.is_set() or _cancelled()

        def write() -> None:
            try:
                handed.put(self.engine.reply(messages, max_tokens, on_delta))
            except BaseException as error:  # handed over and raised in the request's thread
                handed.put(error)

        # The copied context carries the request's cancellation token into the thread.
        writer = threading.Thread(target=contextvars.copy_context().run, args=(write,), name="reply-writer")
        writer.start()
        try:
            while True:
                item: Any = handed.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, Written):
                    return
        finally:
            # Hosting stops taking pieces when the request is cancelled (this generator is
            # closed): the engine stops at its next piece, and its thread is not left behind.
            left.set()
            writer.join()


def _cancelled() -> bool:
    try:
        checkpoint()
    except Cancelled:
        return True
    return False
