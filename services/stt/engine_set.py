"""Everything the STT service loads: the recognizers, the speaker embedder, the VAD.

The runtime loads it in the background while health reports NOT_SERVING. The
diarizer and the voice activity detector are shared by every model; if one cannot
load, the requests that need it get an unavailable error and the rest still work.
"""

from __future__ import annotations

from collections.abc import Callable

from services.stt.diarization import Diarizer
from services.stt.recognizer import Recognizer
from services.stt.vad import SpeechDetector
from speechmesh.common.errors import ModelUnavailable
from speechmesh.common.models import ModelCard
from speechmesh.common.registry import EngineRegistry, load_failure


class SttEngines:
    def __init__(
        self,
        recognizers: EngineRegistry[Recognizer],
        diarizer: Callable[[], Diarizer],
        detector: Callable[[], SpeechDetector],
    ) -> None:
        """`diarizer` and `detector` build loaded components; they run in `load()`."""
        self.recognizers = recognizers
        self._factories = {"diarization": diarizer, "voice activity detection": detector}
        self._loaded: dict[str, object] = {}
        self._failures: dict[str, str] = {}

    def load(self) -> None:
        self.recognizers.load()
        for name, factory in self._factories.items():
            try:
                component = factory()
            except Exception as error:
                # Whatever it raises (the d-vector embedder raises ModelUnavailable), a component
                # fails only the requests that need it, never the load.
                self._failures[name] = load_failure(f"component {name}", error)
                continue
            self._loaded[name] = component

    def models(self) -> list[ModelCard]:
        return self.recognizers.models()

    def diarizer(self) -> Diarizer:
        return self._component("diarization")  # type: ignore[return-value]

    def detector(self) -> SpeechDetector:
        return self._component("voice activity detection")  # type: ignore[return-value]

    def _component(self, name: str) -> object:
        if name not in self._loaded:
            reason = self._failures.get(name, "not loaded")
            raise ModelUnavailable(f"{name.capitalize()} is not available on this server: {reason}")
        return self._loaded[name]
