"""Model cards: what an engine tells the world about the model it serves.

Plain dataclasses so engines can describe themselves without importing the proto
package; services convert them to `ModelInfo` messages.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace


class ModelKind(enum.Enum):
    TTS = "tts"
    STT = "stt"
    AUDIO = "audio"
    VOICE_CONVERSION = "voice_conversion"
    CHAT = "chat"


class Tier(enum.Enum):
    FREE = "free"
    STANDARD = "standard"
    PREMIUM = "premium"


class ModelState(enum.Enum):
    LOADING = "loading"
    READY = "ready"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class ModelCard:
    id: str
    name: str
    kind: ModelKind
    tier: Tier
    languages: tuple[str, ...] = ()
    supports_cloning: bool = False
    supports_streaming: bool = False
    state: ModelState = ModelState.LOADING
    unavailable_reason: str = ""

    def with_state(self, state: ModelState, reason: str = "") -> ModelCard:
        return replace(self, state=state, unavailable_reason=reason)
