"""Cooperative cancellation of blocking work, without any transport in sight.

Engine work runs in a thread pool, and Python cannot stop a thread from outside: when
the caller of a long transcription goes away, the thread would run to the end. So the
work is given a token when it starts (`bound`, called by `speechmesh.runtime.blocking.Blocking`),
the runtime trips it when the awaiting call is cancelled, and long loops call
`checkpoint()` between steps, which raises `Cancelled` once the token is tripped.

The token travels in a context variable, so the engine Protocols keep their signatures
and code that never looks at it keeps working; outside any bound work `checkpoint()`
does nothing.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import TypeVar

from speechmesh.common.errors import Cancelled

T = TypeVar("T")

_TOKEN: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("speechmesh_cancel", default=None)


def bound(token: threading.Event, fn: Callable[..., T], *args: object) -> T:
    """Calls `fn(*args)` with `token` as the current cancellation token."""
    reset = _TOKEN.set(token)
    try:
        return fn(*args)
    finally:
        _TOKEN.reset(reset)


def checkpoint() -> None:
    """Raises `Cancelled` when the work in progress has been cancelled."""
    token = _TOKEN.get()
    if token is not None and token.is_set():
        raise Cancelled("The caller went away; the work was stopped.")
