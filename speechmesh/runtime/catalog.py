"""ModelCatalog servicer: reports a service's model cards, whatever their state."""

from __future__ import annotations

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


class ModelCatalogServicer(models_pb2_grpc.ModelCatalogServicer):
    def __init__(self, models: Callable[[], list[ModelCard]]) -> None:
        self._models = models

    async def ListModels(
        self, request: models_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> models_pb2.ListModelsResponse:
        return models_pb2.ListModelsResponse(models=[model_info(card) for card in self._models()])
