"""Each model's price tier as its service's model card states it (what /v1/models/ shows),
for pricing TTS before the work starts: the catalog is asked once, then kept for a minute; a
model not in it is asked about again at most every few seconds (a caller naming made-up
models cannot turn each request into a catalog call to every service)."""

from __future__ import annotations

import asyncio
import logging
import time

from speechmesh.clients.mesh import Mesh
from speechmesh.v1 import models_pb2

log = logging.getLogger(__name__)

TIER_NAMES = {models_pb2.FREE: "free", models_pb2.STANDARD: "standard", models_pb2.PREMIUM: "premium"}
_FRESH_SECONDS = 60.0
_UNKNOWN_SECONDS = 5.0
_TIMEOUT_SECONDS = 2.0


class ModelTiers:
    def __init__(self, mesh: Mesh) -> None:
        self._mesh = mesh
        self._tiers: dict[str, str] = {}
        self._read_at = -_FRESH_SECONDS
        self._lock = asyncio.Lock()

    async def of(self, model: str) -> str | None:
        """The model's tier (free, standard, premium), or None when no service lists it."""
        age = time.monotonic() - self._read_at
        if age > _FRESH_SECONDS or (model not in self._tiers and age > _UNKNOWN_SECONDS):
            await self._refresh()
        return self._tiers.get(model)

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._read_at <= _UNKNOWN_SECONDS:
                return  # another request read it meanwhile
            try:
                models = await self._mesh.models(_TIMEOUT_SECONDS)
            except Exception:  # no catalog now: the tiers known so far (unknown: the highest price)
                log.warning("reading the model catalog for prices failed", exc_info=True)
                return
            finally:
                self._read_at = time.monotonic()
            self._tiers = {model.id: TIER_NAMES[model.tier] for model in models if model.tier in TIER_NAMES}
