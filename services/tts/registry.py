"""Which TTS models exist, which engine serves each, and the registry built from config.

Every model the API documents is listed, so `/v1/models/` can say why one is not
served here instead of pretending it does not exist. Engines are imported lazily
inside their factory: a missing package makes that model unavailable, not the service.
"""

from __future__ import annotations

from services.tts.settings import TtsSettings
from services.tts.synthesizer import Synthesizer
from speechmesh.common.models import ModelCard, ModelKind, Tier
from speechmesh.common.registry import EngineRegistry, EngineSpec

_NO_WEIGHTS = "No package on the reachable registries ships its weights, and this server downloads nothing at run time."


def _card(model_id: str, name: str, tier: Tier, languages: tuple[str, ...], cloning: bool = False) -> ModelCard:
    return ModelCard(
        id=model_id,
        name=name,
        kind=ModelKind.TTS,
        tier=tier,
        languages=languages,
        supports_cloning=cloning,
        supports_streaming=True,
    )


def _piper(settings: TtsSettings) -> Synthesizer:
    from services.tts.engines.piper import PiperSynthesizer

    return PiperSynthesizer(settings.piper)


def build_registry(settings: TtsSettings) -> EngineRegistry[Synthesizer]:
    specs: list[EngineSpec[Synthesizer]] = [
        EngineSpec(_card("piper", "Piper", Tier.FREE, ("en",)), factory=lambda: _piper(settings)),
        EngineSpec(
            _card("kokoro", "Kokoro", Tier.STANDARD, ("en", "ja", "fr", "it", "es")),
            unavailable_reason="The Kokoro engine is not part of this build yet.",
        ),
        EngineSpec(_card("vits", "VITS", Tier.FREE, ("en",)), unavailable_reason=_NO_WEIGHTS),
        EngineSpec(
            _card("melotts", "MeloTTS", Tier.FREE, ("en", "es", "fr", "zh", "ja", "ko")), unavailable_reason=_NO_WEIGHTS
        ),
        EngineSpec(
            _card("cosyvoice2", "CosyVoice 2", Tier.STANDARD, ("zh", "en", "ja", "ko"), True),
            unavailable_reason=_NO_WEIGHTS,
        ),
        EngineSpec(_card("tortoise", "Tortoise", Tier.PREMIUM, ("en",), True), unavailable_reason=_NO_WEIGHTS),
        EngineSpec(_card("chatterbox", "Chatterbox", Tier.PREMIUM, ("en",), True), unavailable_reason=_NO_WEIGHTS),
        EngineSpec(
            _card("gpt-sovits", "GPT-SoVITS", Tier.PREMIUM, ("zh", "en", "ja"), True), unavailable_reason=_NO_WEIGHTS
        ),
    ]
    return EngineRegistry(specs, enabled=settings.engines, default_model=settings.default_model)
