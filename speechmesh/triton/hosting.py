"""The Triton side: the base of the python-backend models that host speechmesh engines.

`deploy/triton/models/<model>/1/model.py` subclasses a kind's model (`triton_model.py` of
services/tts, stt, audio and chat; services/stt `triton_embedder.py`), which builds the
engine with the same code and settings as the in-process runtime and answers through
`HostedModel`:

- Requests of one `execute` (a dynamic batch, or one) run at once in a thread pool, so an
  engine that batches its own work across concurrent calls (Whisper's DecodeBatcher) sees
  them together; a non-decoupled model answers them in order, a decoupled one sends each
  piece as it comes and then the final flag.
- Cancellation: a watcher thread trips the request's speechmesh cancellation token when
  Triton says the request is cancelled (the client left), so engines stop at their next
  `checkpoint()` exactly as they do in-process; a stream also stops between pieces.
- Tensors cross through DLPack, never `as_numpy()` or `Tensor(name, array)` (wire.py: the
  stub's numpy conversions are wrong under numpy 2).
- Typed errors travel as typed errors (wire.py); anything else is logged with its traceback
  and answered as an internal error without details.

Only tritonserver's python stub imports this module: `triton_python_backend_utils` exists
nowhere else.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import triton_python_backend_utils as pb_utils

from speechmesh.common.cancel import bound
from speechmesh.common.errors import SpeechmeshError
from speechmesh.common.settings import ServiceSettings
from speechmesh.runtime import numba_cache
from speechmesh.triton import wire

log = logging.getLogger(__name__)

Tensors = dict[str, np.ndarray]
S = TypeVar("S", bound=ServiceSettings)
_WATCH_SECONDS = 0.1


def in_process(settings_class: type[S], **fields: Any) -> S:
    """A service's settings (the environment's, and `fields`) for the engine this Triton model
    runs: in this process, whatever `runtime` the environment gives the services. Replaced
    after construction: a `runtime` passed to the constructor is merged with the environment's
    (pydantic-settings deep-merges dicts), and the model would wait for itself."""
    return settings_class(**fields).model_copy(update={"runtime": {}})


class HostedModel:
    """TritonPythonModel's methods over `answer` (one request -> one set of tensors) or
    `pieces` (decoupled: one request -> an iterator of sets).

    A decoupled model's `execute` returns as soon as its requests are in the pool, so Triton
    hands it the next batch while they run; a non-decoupled one returns when the whole batch
    is answered, and requests that arrive meanwhile wait for the slowest of it. Models whose
    calls take long (Whisper) are decoupled for that reason, even with one response each."""

    def setup(self, name: str, parameters: dict[str, str]) -> None:
        """Builds and loads the engine; raising fails the model's load in Triton."""
        raise NotImplementedError

    def answer(self, inputs: Tensors) -> Tensors:
        raise NotImplementedError

    def pieces(self, inputs: Tensors) -> Iterator[Tensors]:
        """A decoupled model's responses; by default the one `answer`."""
        yield self.answer(inputs)

    def initialize(self, args: dict[str, str]) -> None:
        logging.basicConfig(level=logging.INFO)
        sys.unraisablehook = _quiet_capsules
        config = json.loads(args["model_config"])
        self._batched = int(config.get("max_batch_size", 0)) > 0
        self._decoupled = bool(config.get("model_transaction_policy", {}).get("decoupled", False))
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        workers = max(int(parameters.get("workers", "1")), int(config.get("max_batch_size", 0)))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=args["model_name"])
        self._watched: dict[int, tuple[Any, threading.Event]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="cancel-watch", daemon=True)
        self._watcher.start()
        # numba (librosa's kernels: the embedder's features, the separator) compiles into a
        # cache folder of this process's own, as a service's does (numba_cache.py says why):
        # Triton's environment may name a folder that a service is compiling into right now.
        numba_cache.claim(f"triton-{args['model_name']}")
        self.setup(args["model_name"], parameters)

    def execute(self, requests: list[Any]) -> list[Any] | None:
        if self._decoupled:
            for request in requests:
                self._pool.submit(self._stream, request)
            return None
        return [future.result() for future in [self._pool.submit(self._respond, request) for request in requests]]

    def finalize(self) -> None:
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _respond(self, request: Any) -> Any:
        try:
            return self._response(self._guarded(request, self.answer))
        except Exception as error:
            return self._failure(error)

    def _stream(self, request: Any) -> None:
        sender = request.get_response_sender()
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL

        def send(inputs: Tensors) -> None:
            for tensors in self.pieces(inputs):
                # Between pieces, as the in-process stream stops between sentences.
                if request.is_cancelled():
                    return
                sender.send(self._response(tensors))

        try:
            self._guarded(request, send)
        except Exception as error:
            sender.send(self._failure(error), flags=final)
            return
        sender.send(flags=final)

    def _guarded(self, request: Any, work: Any) -> Any:
        """Runs `work(inputs)` with a cancellation token that the watcher trips."""
        token = threading.Event()
        with self._lock:
            self._watched[id(request)] = (request, token)
        try:
            return bound(token, work, self._inputs(request))
        finally:
            with self._lock:
                self._watched.pop(id(request), None)

    def _watch(self) -> None:
        while not self._stopping.wait(_WATCH_SECONDS):
            with self._lock:
                watched = list(self._watched.values())
            for request, token in watched:
                if request.is_cancelled():
                    token.set()

    def _inputs(self, request: Any) -> Tensors:
        # A copy: the request's shared memory is released once it is answered.
        inputs = {tensor.name(): np.array(np.from_dlpack(tensor)) for tensor in request.inputs()}
        return {name: value[0] for name, value in inputs.items()} if self._batched else inputs

    def _response(self, tensors: Tensors) -> Any:
        outputs = []
        for name, value in tensors.items():
            # DLPack exports only writable arrays (JSON from np.frombuffer is read-only).
            array = np.require(value[np.newaxis, ...] if self._batched else value, requirements=["C", "W"])
            outputs.append(pb_utils.Tensor.from_dlpack(name, array.__dlpack__()))
        return pb_utils.InferenceResponse(output_tensors=outputs)

    @staticmethod
    def _failure(error: Exception) -> Any:
        """The response of a request that failed with `error`."""
        if isinstance(error, SpeechmeshError):
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(wire.error_message(error)))
        log.exception("model call failed", exc_info=error)
        return pb_utils.InferenceResponse(error=pb_utils.TritonError("internal error"))


def _quiet_capsules(unraisable: Any) -> None:
    """Drops one known harmless complaint: the stub renames a DLPack capsule it consumed, so
    the capsule's destructor (numpy's) finds a name it did not give it and reports it as
    unraisable after the tensor was copied; everything else is reported as usual."""
    if isinstance(unraisable.exc_value, ValueError) and "PyCapsule_GetPointer" in str(unraisable.exc_value):
        return
    sys.__unraisablehook__(unraisable)
