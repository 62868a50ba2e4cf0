"""One Whisper model's decoder, shared by concurrent calls: their chunks decoded together.

Measured on 2 cores (Whisper base, int8, four 5 s LibriVox chunks): CTranslate2's
`generate` took 1.41 s for the four one at a time and 0.69 s for the four in one batch,
while `encode` took 1.19 s one at a time and 1.55 s as one batch. So each call encodes its
own chunks, one by one, and hands the encodings here; a thread of this batcher decodes
up to `max_batch` waiting chunks, from every call that has some, once every call inside
`transcribing()` is waiting for it (the others are still encoding: their chunks are
moments away), or after `max_wait` seconds. A lone call pays nothing for it (its chunks
go at once); concurrent calls share decoder steps instead of queueing whole.

CTranslate2 decodes a batch in one go only when its prompts put <|startoftranscript|> at
the same place and the decoding settings agree, so chunks are grouped by those; the
prompts themselves (language, task, previous text) may differ.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from speechmesh.common.cancel import checkpoint

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

# How often a waiting call looks whether its caller has gone.
_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Settings:
    """What must agree for chunks to share a `generate` call (hashable: it groups them)."""

    start_index: int
    options: tuple[tuple[str, Any], ...]


@dataclass
class _Chunk:
    encoded: np.ndarray  # one chunk's encoder output (frames x width)
    prompt: list[int]
    settings: Settings
    result: Future[Any] = field(default_factory=Future)
    since: float = field(default_factory=time.monotonic)


class DecodeBatcher:
    """Decodes encoded chunks of any number of calls in shared batches (module docstring)."""

    def __init__(self, model: WhisperModel, max_batch: int, max_wait: float = 1.0) -> None:
        self._model = model
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._waiting: deque[_Chunk] = deque()
        # Calls inside transcribing(), and how many of them wait in generate() now.
        self._calls = 0
        self._callers_waiting = 0
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextmanager
    def transcribing(self) -> Iterator[None]:
        """Around a call's work: the decoder waits for the chunks of calls inside it."""
        with self._ready:
            self._calls += 1
        try:
            yield
        finally:
            with self._ready:
                self._calls -= 1
                self._ready.notify()

    def generate(self, encoded: np.ndarray, prompt: list[int], start_token: int, options: dict[str, Any]) -> list[Any]:
        """CTranslate2 `WhisperGenerationResult`s of each row of `encoded` decoded after
        `prompt` with `options` (generate's keyword arguments); a cancelled caller stops
        waiting, and its chunks not yet decoded are dropped."""
        settings = Settings(prompt.index(start_token), tuple(sorted((k, _hashable(v)) for k, v in options.items())))
        chunks = [_Chunk(row, prompt, settings) for row in encoded]
        with self._ready:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="whisper-decoder", daemon=True)
                self._thread.start()
            self._waiting.extend(chunks)
            self._callers_waiting += 1
            self._ready.notify()
        try:
            results = []
            for chunk in chunks:
                while True:
                    checkpoint()
                    try:
                        results.append(chunk.result.result(timeout=_POLL_SECONDS))
                        break
                    except TimeoutError:
                        continue
            return results
        finally:
            for chunk in chunks:
                chunk.result.cancel()  # a no-op once decoded; else the decoder skips it
            with self._ready:
                self._callers_waiting -= 1

    def _serve(self) -> None:
        while True:
            batch = self._next_batch()
            try:
                results = self._decode(batch)
            except Exception as error:  # every caller of the batch hears of it
                for chunk in batch:
                    chunk.result.set_exception(error)
            else:
                for chunk, result in zip(batch, results, strict=True):
                    chunk.result.set_result(result)

    def _next_batch(self) -> list[_Chunk]:
        """The oldest waiting chunk and those after it that share its settings, up to
        `max_batch`, leaving the others in their order; chunks of callers who left are dropped."""
        with self._ready:
            while True:
                if not self._worth_waiting():
                    batch = self._take()
                    if batch:
                        return batch
                self._ready.wait(self._max_wait / 4)

    def _worth_waiting(self) -> bool:
        """Whether more chunks are on their way and the waiting ones can wait for them."""
        if not self._waiting or len(self._waiting) >= self._max_batch:
            return False
        return self._callers_waiting < self._calls and time.monotonic() - self._waiting[0].since < self._max_wait

    def _take(self) -> list[_Chunk]:
        batch: list[_Chunk] = []
        kept: deque[_Chunk] = deque()
        while self._waiting:
            chunk = self._waiting.popleft()
            if chunk.result.cancelled():
                continue
            if len(batch) >= self._max_batch or (batch and chunk.settings != batch[0].settings):
                kept.append(chunk)
            elif chunk.result.set_running_or_notify_cancel():  # False: its caller just left
                batch.append(chunk)
        self._waiting = kept
        return batch

    def _decode(self, batch: Sequence[_Chunk]) -> list[Any]:
        import ctranslate2

        encoded = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack([c.encoded for c in batch])))
        options = dict(batch[0].settings.options)
        results: list[Any] = self._model.model.generate(encoded, [chunk.prompt for chunk in batch], **options)
        return results


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
