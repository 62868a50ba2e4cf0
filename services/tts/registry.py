"""Which TTS models exist, which engine serves each, and the registry built from config.

Every model the API documents is listed, so `/v1/models/` can say why one is not
served here instead of pretending it does not exist. Engines are imported lazily
inside their factory: a missing package makes that model unavailable, not the service.
"""

from __future__ import annotations

from services.tts.cloner import VoiceCloner
from services.tts.engine_set import TtsEngines
from services.tts.settings import TtsSettings
from services.tts.synthesizer import Synthesizer
from speechmesh.common.models import ModelCard, ModelKind, Tier
from speechmesh.common.registry import EngineRegistry, EngineSpec, placed

_NO_WEIGHTS = "No package on the reachable registries ships its weights, and this server downloads nothing at run time."

# What espeak-ng 1.51 (Debian) ships once `engines.espeak.parse_voices` has left out
# fictional languages and romanized-input voices; the engine's voices say the same
# (tests/test_tts_engines.py checks it), an older or newer espeak-ng may differ a little.
_ESPEAK_CODES = (
    "af am an ar as az ba be bg bn bpy bs ca chr cs cv cy da de el en eo es et eu fa fi fr ga gd gn grc gu "
    "hak haw he hi hr ht hu hy hyw ia id io is it ja ka kk kl kn ko kok ku ky la lb lt ltg lv mi mk ml mr ms "
    "mt my nb nci ne nl nog om or pa pap pl pt qu quc ro ru sd shn si sk sl smj sq sr sv sw ta te th tk tn tr "
    "tt ug uk ur uz vi yue zh"
)
ESPEAK_LANGUAGES = tuple(_ESPEAK_CODES.split())
# The 17 languages of XTTS-v2's config.json ("zh-cn" written as "zh").
XTTS_LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh", "hu", "ko", "ja", "hi")


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


def _kokoro(settings: TtsSettings) -> Synthesizer:
    from services.tts.engines.kokoro import KokoroSynthesizer

    return KokoroSynthesizer(settings.kokoro)


def _espeak(settings: TtsSettings) -> Synthesizer:
    from services.tts.engines.espeak import EspeakSynthesizer

    return EspeakSynthesizer(settings.espeak)


def _festival(settings: TtsSettings) -> Synthesizer:
    from services.tts.engines.festival import FestivalSynthesizer

    return FestivalSynthesizer(settings.festival)


def _xtts(settings: TtsSettings) -> Synthesizer:
    from services.tts.engines.xtts import XttsSynthesizer

    return XttsSynthesizer(settings.models_dir, settings.xtts)


def _xtts_languages() -> tuple[str, ...]:
    """What XTTS can be asked for here: Japanese and Chinese need romanizers that a stock
    coqui-tts install leaves out, so the card lists them only when they are installed."""
    from services.tts.engines.xtts import frontend_installed

    return tuple(code for code in XTTS_LANGUAGES if frontend_installed(code))


def _triton(settings: TtsSettings, model: str) -> Synthesizer:
    from services.tts.engines.triton import TritonSynthesizer

    return TritonSynthesizer(model, settings.triton)


def build_registry(settings: TtsSettings) -> EngineRegistry[Synthesizer]:
    specs: list[EngineSpec[Synthesizer]] = [
        EngineSpec(_card("piper", "Piper", Tier.FREE, ("en",)), factory=lambda: _piper(settings)),
        EngineSpec(
            _card("kokoro", "Kokoro", Tier.STANDARD, ("en", "ja", "fr", "it", "es")),
            factory=lambda: _kokoro(settings),
        ),
        # Not on the seed's price list. Free: rule-based formant speech, robotic and about
        # 20x cheaper to run than Piper, so it should cost no more than the cheapest tier.
        EngineSpec(_card("espeak", "eSpeak NG", Tier.FREE, ESPEAK_LANGUAGES), factory=lambda: _espeak(settings)),
        # Not on the seed's price list either; free for the same reason as eSpeak (HTS and
        # diphone voices, dated quality, a fraction of a second a sentence).
        EngineSpec(_card("festival", "Festival", Tier.FREE, ("en",)), factory=lambda: _festival(settings)),
        # Premium like the seed's Tortoise: a 1.9 GB autoregressive GPT that runs slower than
        # real time on CPU. XTTS-v2 can clone from a reference, but cloning through it is not
        # wired (no weights here to verify it with), so the card does not claim it.
        EngineSpec(_card("xtts", "XTTS-v2", Tier.PREMIUM, _xtts_languages()), factory=lambda: _xtts(settings)),
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
    placed_specs = [placed(spec, settings, lambda model: _triton(settings, model)) for spec in specs]
    return EngineRegistry(placed_specs, enabled=settings.engines, default_model=settings.default_model)


def _world(settings: TtsSettings, synthesizers: EngineRegistry[Synthesizer]) -> VoiceCloner:
    from services.tts.engines.world import WorldCloner

    return WorldCloner(synthesizers, settings.clone_base_models, settings.piper.threads)


def build_cloners(settings: TtsSettings, synthesizers: EngineRegistry[Synthesizer]) -> EngineRegistry[VoiceCloner]:
    # Priced as the seed prices cloning (4 credits per 1,000 characters: the premium tier).
    card = ModelCard(
        id="world-adapt",
        name="Nearest voice + WORLD adaptation (not neural cloning)",
        kind=ModelKind.TTS,
        tier=Tier.PREMIUM,
        languages=("en", "ja", "fr", "it", "es"),
        supports_cloning=True,
        supports_streaming=False,
    )
    specs = [EngineSpec[VoiceCloner](card, factory=lambda: _world(settings, synthesizers))]
    return EngineRegistry(specs, enabled=settings.cloners, default_model="world-adapt")


def build_engines(settings: TtsSettings) -> TtsEngines:
    synthesizers = build_registry(settings)
    return TtsEngines(synthesizers, build_cloners(settings, synthesizers), settings.stream_first_piece_chars)
