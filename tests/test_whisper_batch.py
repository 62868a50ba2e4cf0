"""Whisper's shared decoder: concurrent calls' chunks decoded in one batch, each result
back to its own caller; a caller who leaves has its chunks dropped; and, with the real
model, concurrent Recognize calls hear what each hears alone."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from services.stt.engines.whisper_batch import DecodeBatcher
from speechmesh.common.cancel import bound
from speechmesh.common.errors import Cancelled
from tests.conftest import librivox
from tests.test_stt_fidelity import recognize

START = 50258  # <|startoftranscript|>


class FakeDecoder:
    """Stands in for CTranslate2's Whisper: records each batch, answers each row with its
    prompt's last token and the row's first value, so a mixed-up answer shows."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.seconds = seconds
        self.model = self

    def generate(self, encoded: Any, prompts: list[list[int]], **options: Any) -> list[tuple[int, float]]:
        rows = np.array(encoded)
        self.batches.append([prompt[-1] for prompt in prompts])
        time.sleep(self.seconds)
        return [(prompt[-1], float(row[0, 0])) for prompt, row in zip(prompts, rows, strict=True)]


def chunks(caller: int, count: int) -> np.ndarray:
    return np.full((count, 2, 3), caller, np.float32)


def test_concurrent_calls_share_one_batch_and_get_their_own_results() -> None:
    decoder = FakeDecoder()
    batcher = DecodeBatcher(SimpleNamespace(model=decoder), max_batch=8)  # type: ignore[arg-type]
    started = threading.Barrier(3)

    def call(caller: int) -> list[Any]:
        with batcher.transcribing():
            started.wait()
            time.sleep(0.05 * caller)  # encoding, each its own time
            return batcher.generate(chunks(caller, 2), [START, 100 + caller], START, {"beam_size": 5})

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(call, range(3)))
    assert results == [[(100 + caller, caller)] * 2 for caller in range(3)]
    # The decoder waited for the third caller's chunks: one batch of six.
    assert decoder.batches == [[100, 100, 101, 101, 102, 102]]


def test_a_batch_holds_at_most_max_batch_chunks_of_one_setting() -> None:
    decoder = FakeDecoder()
    batcher = DecodeBatcher(SimpleNamespace(model=decoder), max_batch=3)  # type: ignore[arg-type]
    started = threading.Barrier(2)

    def call(caller: int) -> list[Any]:
        with batcher.transcribing():
            started.wait()
            return batcher.generate(chunks(caller, 2), [START, caller], START, {"beam_size": 1 + caller})

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(call, range(2)))
    assert sorted(map(sorted, decoder.batches)) == [[0, 0], [1, 1]], "different settings are never mixed"
    decoder.batches.clear()
    with batcher.transcribing():
        batcher.generate(chunks(0, 7), [START, 0], START, {})
    assert [len(batch) for batch in decoder.batches] == [3, 3, 1]


def test_a_caller_who_leaves_has_its_waiting_chunks_dropped() -> None:
    decoder = FakeDecoder(seconds=0.3)
    batcher = DecodeBatcher(SimpleNamespace(model=decoder), max_batch=1)  # type: ignore[arg-type]
    token = threading.Event()

    def leaving() -> None:
        with batcher.transcribing():
            threading.Timer(0.1, token.set).start()
            batcher.generate(chunks(1, 5), [START, 1], START, {})

    with pytest.raises(Cancelled):
        bound(token, leaving)
    time.sleep(0.5)
    # The chunk being decoded when the caller left finished; the four behind it were dropped.
    assert decoder.batches == [[1]]


@pytest.mark.slow
async def test_concurrent_recognize_calls_hear_what_each_hears_alone(stt_channel) -> None:
    clips = [librivox(name).pcm.samples for name in ("0870", "0880", "0890", "0920")]
    alone = [(await recognize(stt_channel, clip, model="whisper", language="en")).text for clip in clips]
    together = await asyncio.gather(*(recognize(stt_channel, clip, model="whisper", language="en") for clip in clips))
    assert [reply.text for reply in together] == alone
    assert all(alone)
