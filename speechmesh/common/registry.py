"""Engine registry: which models a service knows, which it loaded, and why others failed.

A service declares every model it documents as an `EngineSpec` (its card plus a factory,
or the reason no engine can serve it here). `load()` builds the enabled engines, loads
and warms them; a model whose package or weights are missing, or whose load fails in any
other way, is kept as UNAVAILABLE with the reason instead of failing the service (clients
read that reason, so it names no server paths; the log line has them). Transport-free:
servicers ask it for engines by model id and get typed errors back.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from speechmesh.common.errors import ModelLoading, ModelUnavailable, NotFound
from speechmesh.common.models import ModelCard, ModelState
from speechmesh.common.settings import ServiceSettings

log = logging.getLogger(__name__)


class Engine(Protocol):
    def load(self) -> None:
        """Loads weights; raises ImportError/OSError/ModelUnavailable when it cannot."""

    def warm_up(self) -> None:
        """Runs one small request so the first real one is not slow."""


E = TypeVar("E", bound=Engine)


@dataclass(frozen=True)
class EngineSpec(Generic[E]):
    card: ModelCard
    factory: Callable[[], E] | None = None
    unavailable_reason: str = ""


def placed(spec: EngineSpec[E], settings: ServiceSettings, remote: Callable[[str], E]) -> EngineSpec[E]:
    """`spec` with its engine where `settings.runtime` puts it: a model on Triton is built by
    `remote(model_id)` (the engine that calls Triton's model) instead of its own factory."""
    model = spec.card.id
    if spec.factory is None or not settings.on_triton(model):
        return spec
    return dataclasses.replace(spec, factory=lambda: remote(model))


class EngineRegistry(Generic[E]):
    def __init__(self, specs: Iterable[EngineSpec[E]], enabled: Iterable[str], default_model: str) -> None:
        self._specs = {spec.card.id: spec for spec in specs}
        self._enabled = list(enabled)
        unknown = [name for name in self._enabled if name not in self._specs]
        if unknown:
            raise ValueError(f"unknown engines enabled: {unknown}; known: {sorted(self._specs)}")
        self.default_model = default_model
        self._cards: dict[str, ModelCard] = {}
        self._engines: dict[str, E] = {}
        self._lock = threading.Lock()
        for model_id, spec in self._specs.items():
            if model_id in self._enabled and spec.factory is not None:
                self._cards[model_id] = spec.card.with_state(ModelState.LOADING)
            else:
                reason = spec.unavailable_reason or "This engine is not enabled in the service's configuration."
                self._cards[model_id] = spec.card.with_state(ModelState.UNAVAILABLE, reason)

    def load(self) -> None:
        """Loads and warms every enabled engine, one at a time (blocking)."""
        for model_id in self._enabled:
            spec = self._specs[model_id]
            if spec.factory is None:
                continue
            try:
                engine = spec.factory()
                engine.load()
                engine.warm_up()
            except Exception as error:
                # Whatever an engine raises, the others still load and the service still serves.
                self._set(model_id, ModelState.UNAVAILABLE, load_failure(f"model {model_id}", error))
                continue
            with self._lock:
                self._engines[model_id] = engine
            self._set(model_id, ModelState.READY)
            log.info("model ready", extra={"model": model_id})

    def models(self) -> list[ModelCard]:
        with self._lock:
            return list(self._cards.values())

    def engines(self) -> dict[str, E]:
        with self._lock:
            return dict(self._engines)

    def get(self, model_id: str = "") -> tuple[str, E]:
        """The engine for `model_id` ('' = default), or a typed error saying why not."""
        model_id = model_id or self.default_model
        with self._lock:
            card = self._cards.get(model_id)
            engine = self._engines.get(model_id)
        if card is None:
            known = ", ".join(sorted(self._cards))
            raise NotFound(f"Model '{model_id}' does not exist; known models: {known}.", model=model_id)
        if card.state is ModelState.LOADING:
            raise ModelLoading(f"Model '{model_id}' is loading; retry in a few seconds.", model=model_id)
        if engine is None:
            raise ModelUnavailable(
                f"Model '{model_id}' is not available on this server. {card.unavailable_reason}",
                model=model_id,
            )
        return model_id, engine

    def _set(self, model_id: str, state: ModelState, reason: str = "") -> None:
        with self._lock:
            self._cards[model_id] = self._cards[model_id].with_state(state, reason)


def load_failure(subject: str, error: Exception) -> str:
    """Logs why `subject` ("model xtts") failed to load, with all the server knows (paths;
    the traceback of an unexpected error), and returns the reason clients may read. That
    leaves out exception texts: an OSError or ImportError names files on the server."""
    if isinstance(error, ModelUnavailable | ImportError | OSError):
        detail = f"{error} ({error.detail})" if isinstance(error, ModelUnavailable) and error.detail else str(error)
        log.warning("%s unavailable: %s", subject, detail, extra={"subject": subject})
    else:
        log.error("%s failed to load", subject, exc_info=error, extra={"subject": subject})
    if isinstance(error, ModelUnavailable):
        return error.message
    if isinstance(error, ImportError):
        package = f"'{error.name}'" if error.name else "it needs"
        return f"The Python package {package} is not installed on this server."
    if isinstance(error, OSError):
        return "Its files are missing or unreadable on this server; the service's log says which."
    return f"It failed to load on this server ({type(error).__name__}); the service's log says why."
