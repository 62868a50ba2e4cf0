"""onnxruntime sessions on the CPU, set up the way a shared machine needs them.

onnxruntime's intra-op threads spin (busy-wait) between operators by default, which pays on
an idle machine with cores to spare. Ours share two cores with the other services and with
concurrent requests: a spinning thread takes the core another one needs. Measured on 2 cores
(2026-11-30, docs/performance.md): with other jobs running, Piper took ~1.4x and Kokoro
1.3-2.5x as long spinning; idle, sleeping threads cost 5-20%.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # onnxruntime is imported when a model loads
    from onnxruntime import InferenceSession, OrtValue


def cpu_session(
    model: str | bytes, threads: int, *, spin: bool = False, external: Mapping[str, OrtValue] | None = None
) -> InferenceSession:
    """A CPU session of `model` (a path or the model's bytes) with `threads` intra-op
    threads (0: onnxruntime's choice, one per core) that sleep rather than spin unless
    `spin` (for cores of its own). `external`: the values of initializers the model keeps
    outside itself, read in place (the caller keeps them alive as long as the session)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if external:
        options.add_external_initializers(list(external), list(external.values()))
    return onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
