"""Which audio models exist, which engine serves each, and the registries built from config.

Documented models that cannot run here are listed with the reason: spleeter (TensorFlow
and its weights are on no reachable registry), openvoice and knn-vc (no weights).
Speech-to-speech's chatterbox is the TTS service's model (one catalog entry per id): the
servicer answers it as unavailable. demucs runs when its weights are put in
`<models_dir>/demucs/` (docs/deploy.md); until then it is unavailable and the DSP
separator (`repet-hpss`) is the default. Separators can also run in a Triton Inference Server
(`runtime` = triton, through `placed`); the other kinds run in-process only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from services.audio.engine_set import AudioEngines
from services.audio.processors import Analyzer, Denoiser, Dereverberator, Restyler, Separator, VoiceConverter
from services.audio.settings import AudioSettings
from speechmesh.common.models import ModelCard, ModelKind, Tier
from speechmesh.common.registry import Engine, EngineRegistry, EngineSpec, placed

E = TypeVar("E", bound=Engine)

NO_WEIGHTS = "Its weights are on no package registry this server can reach, and none were installed."
_SPLEETER = (
    "Spleeter needs TensorFlow and Deezer's pretrained weights, which no reachable registry ships; "
    "use demucs (with its weights installed) or the DSP separator repet-hpss."
)


def _card(model_id: str, name: str, kind: ModelKind = ModelKind.AUDIO, languages: Sequence[str] = ()) -> ModelCard:
    return ModelCard(id=model_id, name=name, kind=kind, tier=Tier.STANDARD, languages=tuple(languages))


def _spec(model_id: str, name: str, factory: Callable[[], E], kind: ModelKind = ModelKind.AUDIO) -> EngineSpec[E]:
    return EngineSpec(_card(model_id, name, kind), factory=factory)


def _missing(model_id: str, name: str, reason: str, kind: ModelKind = ModelKind.AUDIO) -> EngineSpec:
    return EngineSpec(_card(model_id, name, kind), unavailable_reason=reason)


def _registry(specs: list[EngineSpec[E]], settings: AudioSettings, default: str) -> EngineRegistry[E]:
    ids = {spec.card.id for spec in specs}
    return EngineRegistry(specs, enabled=[model for model in settings.engines if model in ids], default_model=default)


def _deepfilter() -> Denoiser:
    from services.audio.engines.deepfilter import DeepFilterDenoiser

    return DeepFilterDenoiser()


def _rnnoise() -> Denoiser:
    from services.audio.engines.rnnoise import RnnoiseDenoiser

    return RnnoiseDenoiser()


def _wpe() -> Dereverberator:
    from services.audio.engines.wpe import WpeDereverberator

    return WpeDereverberator()


def _dsp_separator() -> Separator:
    from services.audio.engines.repet import DspSeparator

    return DspSeparator()


def _demucs(settings: AudioSettings) -> Separator:
    from services.audio.engines.demucs import DemucsSeparator

    return DemucsSeparator(settings.models_dir / "demucs", threads=settings.threads)


def _triton_separator(settings: AudioSettings, model: str) -> Separator:
    from services.audio.engines.triton import TritonSeparator

    return TritonSeparator(model, settings.triton)


def _analyzer() -> Analyzer:
    from services.audio.engines.key_tempo import KeyTempoAnalyzer

    return KeyTempoAnalyzer()


def _converter(settings: AudioSettings) -> VoiceConverter:
    from services.audio.engines.world_convert import WorldConverter

    return WorldConverter(threads=settings.threads)


def _restyler() -> Restyler:
    from services.audio.engines.prosody import WorldRestyler

    return WorldRestyler()


def build_engines(settings: AudioSettings) -> AudioEngines:
    vc = ModelKind.VOICE_CONVERSION
    engines = AudioEngines(
        denoisers=_registry(
            [
                _spec("deepfilternet3", "DeepFilterNet3 (denoiser)", _deepfilter),
                _spec("rnnoise", "RNNoise (denoiser)", _rnnoise),
            ],
            settings,
            settings.default_denoiser,
        ),
        dereverberators=_registry([_spec("wpe", "WPE dereverberation", _wpe)], settings, "wpe"),
        separators=_registry(
            [
                placed(spec, settings, lambda model: _triton_separator(settings, model))
                for spec in [
                    _spec("repet-hpss", "REPET-SIM + HPSS (DSP separator)", _dsp_separator),
                    _spec("demucs", "Demucs (stem separation)", lambda: _demucs(settings)),
                    _missing("spleeter", "Spleeter (stem separation)", _SPLEETER),
                ]
            ],
            settings,
            settings.default_separator,
        ),
        analyzers=_registry([_spec("key-tempo", "Key and tempo (librosa)", _analyzer)], settings, "key-tempo"),
        converters=_registry(
            [
                _spec("world-convert", "WORLD voice conversion", lambda: _converter(settings), vc),
                _missing("openvoice", "OpenVoice", NO_WEIGHTS, vc),
                _missing("knn-vc", "kNN-VC", NO_WEIGHTS, vc),
            ],
            settings,
            settings.default_voice_converter,
        ),
        restylers=_registry(
            [
                _spec("world-prosody", "WORLD prosody transforms (speech-to-speech)", _restyler, vc),
            ],
            settings,
            settings.default_restyler,
        ),
    )
    known = {card.id for card in engines.models()}
    unknown = sorted(set(settings.engines) - known)
    if unknown:
        raise ValueError(f"unknown engines enabled: {unknown}; known: {sorted(known)}")
    return engines
