"""Which endpoints the current task has called, so that a failed call's retry estimate
names the endpoint that failed, not another (each request runs in its own context)."""

from __future__ import annotations

import contextvars

_CALLED: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("speechmesh_endpoints_called", default=())


def calling(name: str) -> None:
    _CALLED.set((*_CALLED.get(), name))


def called() -> tuple[str, ...]:
    """The endpoints the current task has called so far."""
    return _CALLED.get()
