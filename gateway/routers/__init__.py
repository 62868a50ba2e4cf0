"""HTTP routes, one module per resource. `both()` serves a path with and without its slash."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter


def both(
    router: APIRouter, method: str, path: str, **kwargs: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Registers `path` and its twin with or without the trailing slash for one endpoint."""
    twin = path.removesuffix("/") if path.endswith("/") else f"{path}/"

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        router.add_api_route(path, endpoint, methods=[method], **kwargs)
        router.add_api_route(twin, endpoint, methods=[method], include_in_schema=False, **kwargs)
        return endpoint

    return register
