"""What a speechmesh engine and its Triton model exchange, shared by both sides.

Every model takes a `REQUEST` tensor (UINT8: the JSON of the call) and, where it has audio,
float32 tensors; it answers a `REPLY` tensor (UINT8 JSON) and float32 tensors. JSON travels
as UINT8, not as Triton's BYTES type: the python backend's stub (pytriton's build, made
against numpy 1.x) reads BYTES and numpy-converted tensors wrongly under numpy 2 (every
element equal to the first); tensors passed through DLPack are read right (hosting.py).

A typed speechmesh error raised inside Triton reaches the caller as the same typed error: its
class name, message and fields ride in the Triton error's message after `ERROR_PREFIX`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from speechmesh.common import errors

REQUEST = "REQUEST"
REPLY = "REPLY"
# Audio: float32 samples, (frames,) mono or (frames, channels).
AUDIO = "AUDIO"
ERROR_PREFIX = "speechmesh-error:"


def pack(value: object) -> np.ndarray:
    """`value` as a UINT8 tensor of its JSON."""
    return np.frombuffer(json.dumps(value).encode(), np.uint8)


def unpack(tensor: np.ndarray) -> Any:
    return json.loads(np.ascontiguousarray(tensor, np.uint8).tobytes())


def error_message(error: errors.SpeechmeshError) -> str:
    """The Triton error message that carries `error` across."""
    payload = {"type": type(error).__name__, "message": error.message, "fields": error.fields}
    return ERROR_PREFIX + json.dumps(payload)


def typed_error(message: str) -> errors.SpeechmeshError | None:
    """The typed error a Triton error message carries, or None when it carries none."""
    start = message.find(ERROR_PREFIX)
    if start < 0:
        return None
    payload = json.loads(message[start + len(ERROR_PREFIX) :])
    kind, text, fields = payload["type"], payload["message"], dict(payload["fields"])
    if kind == errors.Overloaded.__name__:
        return errors.Overloaded(fields.get("model", ""), int(fields.get("retry_after_seconds", "1")))
    if kind == errors.AudioTooLong.__name__:
        return errors.AudioTooLong(float(fields.pop("max_seconds")), **fields)
    cls = _ERRORS.get(kind, errors.SpeechmeshError)
    return cls(text, **fields)


_ERRORS: dict[str, type[errors.SpeechmeshError]] = {
    cls.__name__: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.SpeechmeshError)
}
