"""Engine registry: unknown, unavailable, loading and failing models get typed errors."""

from __future__ import annotations

import threading

import pytest

from speechmesh.common.errors import ModelLoading, ModelUnavailable, NotFound
from speechmesh.common.models import ModelCard, ModelKind, ModelState, Tier
from speechmesh.common.registry import EngineRegistry, EngineSpec
from tests.fakes import ScriptedSynthesizer


def card(model_id: str) -> ModelCard:
    return ModelCard(model_id, model_id.title(), ModelKind.TTS, Tier.FREE)


class Broken:
    def load(self) -> None:
        raise RuntimeError("weights corrupt")

    def warm_up(self) -> None:  # pragma: no cover - never reached
        pass


def missing_package() -> Broken:
    raise ModuleNotFoundError("No module named 'kokoro_onnx'", name="kokoro_onnx")


def registry() -> EngineRegistry:
    ready = threading.Event()
    ready.set()
    return EngineRegistry(
        [
            EngineSpec(card("good"), factory=lambda: ScriptedSynthesizer(ready)),
            EngineSpec(card("broken"), factory=Broken),
            EngineSpec(card("absent"), factory=missing_package),
            EngineSpec(card("noweights"), unavailable_reason="No package ships its weights."),
            EngineSpec(card("disabled"), factory=lambda: ScriptedSynthesizer(ready)),
        ],
        enabled=["good", "broken", "absent"],
        default_model="good",
    )


def test_models_are_loading_until_load_and_then_report_their_state() -> None:
    engines = registry()
    assert {m.id: m.state for m in engines.models()}["good"] is ModelState.LOADING
    with pytest.raises(ModelLoading):
        engines.get("good")
    engines.load()
    states = {m.id: (m.state, m.unavailable_reason) for m in engines.models()}
    assert states["good"] == (ModelState.READY, "")
    # Exception texts stay in the log (they can name server paths); the reason names the type.
    assert states["broken"][0] is ModelState.UNAVAILABLE and "RuntimeError" in states["broken"][1]
    assert "weights corrupt" not in states["broken"][1]
    assert states["absent"][0] is ModelState.UNAVAILABLE and "kokoro_onnx" in states["absent"][1]
    assert states["noweights"][1] == "No package ships its weights."
    assert "not enabled" in states["disabled"][1]


def test_get_resolves_default_and_raises_typed_errors() -> None:
    engines = registry()
    engines.load()
    assert engines.get("")[0] == "good"
    with pytest.raises(NotFound, match="known models"):
        engines.get("nope")
    with pytest.raises(ModelUnavailable, match="No package ships"):
        engines.get("noweights")


def test_enabling_an_unknown_engine_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown engines"):
        EngineRegistry([EngineSpec(card("a"))], enabled=["b"], default_model="a")
