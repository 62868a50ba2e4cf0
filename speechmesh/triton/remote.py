"""The caller's side of a Triton model: what engines on the Triton runtime call.

Engine Protocols are synchronous and run in the service's bounded thread pool (`Blocking`),
so this uses tritonclient's synchronous gRPC client there, not `tritonclient.grpc.aio`: an
engine on Triton then fits the same Protocol, admission, cancellation and thread accounting
as an in-process one, and no servicer or pipeline changes (docs/deploy.md says more). A
thread blocked on Triton costs a stack, not a core; the pool bounds how many calls wait.

Each call opens its own client: a decoupled stream belongs to one client object, and
channels with equal arguments share gRPC's connection to the server, so this costs no
handshake. While a call waits it looks at the caller's cancellation token every
`_POLL_SECONDS` and cancels the Triton request (the model sees `is_cancelled()`).

Failures become the service's typed errors: the model's own typed error as it was raised
(wire.py), Triton unreachable -> UpstreamUnavailable, the model not loaded (yet) ->
ModelLoading; both are UNAVAILABLE to callers, the gateway's 503.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from speechmesh.common.cancel import checkpoint
from speechmesh.common.errors import Cancelled, ModelLoading, ModelUnavailable, SpeechmeshError, UpstreamUnavailable
from speechmesh.triton import wire

if TYPE_CHECKING:
    import tritonclient.grpc as triton

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.1
_DTYPES = {np.dtype(np.float32): "FP32", np.dtype(np.uint8): "UINT8", np.dtype(np.int64): "INT64"}
Outputs = dict[str, np.ndarray]


class TritonModel:
    def __init__(self, name: str, url: str, ready_timeout_seconds: float, batched: bool = False) -> None:
        """`batched`: the model's config has a max_batch_size, so every tensor carries a
        leading batch dimension of one."""
        self.name = name
        self.url = url
        self._ready_timeout = ready_timeout_seconds
        self._batched = batched

    def wait_ready(self) -> None:
        """Blocks until Triton serves the model: in a cluster the service may start first.
        Raises ModelUnavailable after the ready timeout (the model stays unavailable)."""
        deadline = time.monotonic() + self._ready_timeout
        said = False
        while True:
            try:
                with self._client() as client:
                    if client.is_model_ready(self.name):
                        return
            except Exception as error:  # unreachable yet; the log says so once
                if not said:
                    log.info("waiting for triton", extra={"model": self.name, "url": self.url, "error": str(error)})
                    said = True
            if time.monotonic() > deadline:
                raise ModelUnavailable(
                    f"Model '{self.name}' is not served by its Triton Inference Server.",
                    detail=f"{self.url} did not serve {self.name} within {self._ready_timeout:g} s",
                )
            time.sleep(0.5)

    def call(self, inputs: Mapping[str, np.ndarray]) -> Outputs:
        """One request, one response."""
        answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
        with self._client() as client:
            context = client.async_infer(
                self.name, self._inputs(inputs), callback=lambda result, error: answers.put((result, error))
            )
            result, error = self._wait(answers, context.cancel)
        if error is not None:
            raise self._typed(error)
        return self._outputs(result)

    def stream(self, inputs: Mapping[str, np.ndarray]) -> Generator[Outputs, None, None]:
        """The responses of a decoupled model, as they come. Closing the iterator early, or the
        caller's cancellation, cancels the request in Triton."""
        answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
        with self._client() as client:
            client.start_stream(callback=lambda result, error: answers.put((result, error)))
            finished = False
            try:
                client.async_stream_infer(self.name, self._inputs(inputs), enable_empty_final_response=True)
                while True:
                    result, error = self._wait(answers, lambda: client.stop_stream(cancel_requests=True))
                    if error is not None:
                        finished = True
                        raise self._typed(error)
                    response = result.get_response()
                    final = response.parameters.get("triton_final_response")
                    if response.outputs:
                        yield self._outputs(result)
                    if final is not None and final.bool_param:
                        finished = True
                        return
            finally:
                client.stop_stream(cancel_requests=not finished)

    def _wait(self, answers: queue.Queue[tuple[Any, Any]], cancel: Any) -> tuple[Any, Any]:
        """The next answer; cancels the request (and raises) once the caller has left."""
        while True:
            try:
                checkpoint()
            except Cancelled:
                cancel()
                raise
            try:
                return answers.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue

    def _client(self) -> triton.InferenceServerClient:
        import tritonclient.grpc as triton

        return triton.InferenceServerClient(self.url)

    def _inputs(self, inputs: Mapping[str, np.ndarray]) -> list[triton.InferInput]:
        import tritonclient.grpc as triton

        tensors = []
        for name, value in inputs.items():
            array = np.ascontiguousarray(value)
            if self._batched:
                array = array[np.newaxis, ...]
            tensor = triton.InferInput(name, list(array.shape), _DTYPES[array.dtype])
            tensor.set_data_from_numpy(array)
            tensors.append(tensor)
        return tensors

    def _outputs(self, result: triton.InferResult) -> Outputs:
        outputs = {}
        for output in result.get_response().outputs:
            array = result.as_numpy(output.name)
            outputs[output.name] = array[0] if self._batched else array
        return outputs

    def _typed(self, error: Exception) -> SpeechmeshError:
        from tritonclient.utils import InferenceServerException

        message = error.message() if isinstance(error, InferenceServerException) else str(error)
        status = str(error.status()) if isinstance(error, InferenceServerException) else ""
        typed = wire.typed_error(message or "")
        if typed is not None:
            return typed
        if "CANCELLED" in status:
            return Cancelled("The call was cancelled.")
        if "UNAVAILABLE" in status:
            return UpstreamUnavailable(f"The Triton Inference Server serving model '{self.name}' cannot be reached.")
        if "not found" in message or "not ready" in message or "unknown model" in message.lower():
            return ModelLoading(f"Model '{self.name}' is loading on Triton; retry in a few seconds.", model=self.name)
        # Triton's own words stay in the log: they may name its instances and paths.
        log.warning("triton call failed", extra={"model": self.name, "status": status, "error": message})
        return UpstreamUnavailable(f"The Triton Inference Server failed model '{self.name}'.")
