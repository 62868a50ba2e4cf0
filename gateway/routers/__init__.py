"""HTTP routes, one module per resource. `both()` serves a path with and without its slash."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute


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


def documented_path(route: APIRoute) -> str:
    """The path a route is documented under: a twin registered by `both()` names its original."""
    if route.include_in_schema:
        return route.path
    return route.path.removesuffix("/") if route.path.endswith("/") else f"{route.path}/"
