"""Database calls that run to their end even when the request that made them is cancelled.

A client that hangs up cancels its request's task (gateway/connection.py). Cancelled at an
await inside a transaction, SQLAlchemy's asyncio adapter gives the connection up without
ending the transaction; on SQLite that connection keeps the file's write lock, so every
later write waits out the busy timeout and fails ("database is locked": 15 s and a 500
per request, measured with 16 hung-up TTS requests). So each call of a SQL store runs in a
task of its own that the caller's cancellation does not reach (`asyncio.shield`): the
transaction commits or rolls back in milliseconds, then the cancellation goes on.

A credit hold taken for a caller who left meanwhile would never be settled: `CreditStore`
gives it back (`gateway/store/credits.py`).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

C = TypeVar("C", bound=type)


def _finishing(method: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(method)
    async def finishing(*args: Any, **kwargs: Any) -> Any:
        return await asyncio.shield(method(*args, **kwargs))

    return finishing


F = TypeVar("F", bound=Callable[..., Any])


def own_cancellation(method: F) -> F:
    """Marks a method that finishes its own work when cancelled (and must hear of it)."""
    method.__own_cancellation__ = True  # type: ignore[attr-defined]
    return method


def finishing(cls: C) -> C:
    """The class with each public coroutine method run to its end whatever its caller does."""
    for name, member in list(vars(cls).items()):
        own = getattr(member, "__own_cancellation__", False)
        if not name.startswith("_") and inspect.iscoroutinefunction(member) and not own:
            setattr(cls, name, _finishing(member))
    return cls
