"""ModelCatalog servicer: reports a service's model cards, whatever their state.

Once loading is over, no model is still loading: one left LOADING was never reached
because the load stopped on an unexpected error (logged by the runtime), so it is listed
unavailable with `LOAD_STOPPED`, and a request naming it gets that error too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc

from speechmesh.common.models import ModelCard, ModelKind, ModelState, Tier
from speechmesh.v1 import models_pb2, models_pb2_grpc

_KIND = {
    ModelKind.TTS: models_pb2.TTS,
    ModelKind.STT: models_pb2.STT,
    ModelKind.AUDIO: models_pb2.AUDIO,
    ModelKind.VOICE_CONVERSION: models_pb2.VOICE_CONVERSION,
    ModelKind.CHAT: models_pb2.CHAT,
}
_TIER = {Tier.FREE: models_pb2.FREE, Tier.STANDARD: models_pb2.STANDARD, Tier.PREMIUM: models_pb2.PREMIUM}
_STATE = {
    ModelState.LOADING: models_pb2.LOADING,
    ModelState.READY: models_pb2.READY,
    ModelState.UNAVAILABLE: models_pb2.UNAVAILABLE,
}


def model_info(card: ModelCard) -> models_pb2.ModelInfo:
    return models_pb2.ModelInfo(
        id=card.id,
        name=card.name,
        type=_KIND[card.kind],
        tier=_TIER[card.tier],
        languages=list(card.languages),
        supports_cloning=card.supports_cloning,
        supports_streaming=card.supports_streaming,
        state=_STATE[card.state],
        unavailable_reason=card.unavailable_reason,
    )


LOAD_STOPPED = "Loading stopped on an unexpected error before this model was loaded; the service's log says why."


class ModelCatalogServicer(models_pb2_grpc.ModelCatalogServicer):
    def __init__(self, models: Callable[[], list[ModelCard]], loaded: asyncio.Event) -> None:
        """`loaded` is set once the service's load is over, however it ended."""
        self._models = models
        self._loaded = loaded

    async def ListModels(
        self,
        request: models_pb2.ListModelsRequest,
        context: grpc.aio.ServicerContext[models_pb2.ListModelsRequest, models_pb2.ListModelsResponse],
    ) -> models_pb2.ListModelsResponse:
        cards = self._models()
        if self._loaded.is_set():
            cards = [_stopped(card) if card.state is ModelState.LOADING else card for card in cards]
        return models_pb2.ListModelsResponse(models=[model_info(card) for card in cards])


def _stopped(card: ModelCard) -> ModelCard:
    return card.with_state(ModelState.UNAVAILABLE, LOAD_STOPPED)
