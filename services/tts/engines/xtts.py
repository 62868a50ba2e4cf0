"""Coqui XTTS-v2 engine (GPT-2 over audio codes + HiFi-GAN; package `coqui-tts`, import `TTS`).

Loads only from `<models_dir>/xtts-v2/` (config.json, model.pth, vocab.json and
speakers_xtts.pth, as the coqui/XTTS-v2 release lays them out); it never downloads.
No registry reachable here ships those weights, so on a stock server this model is listed
as unavailable with the reason. Its packages (coqui-tts, torch: the `xtts` extra) are
opt-in, `make install EXTRAS=xtts`; without them the model is listed as unavailable with
`NEEDS_EXTRA` as the reason (checked before the weights, importing nothing), and the
service serves its other models. `make test` installs the extra, and
tests/test_xtts_loading.py runs this code on a tiny randomly initialised XTTS. Its
voices are the release's studio speakers (speakers_xtts.pth holds their conditioning
latents); every voice speaks every XTTS language whose text frontend is installed.
"""

from __future__ import annotations

import importlib.util
import pickle
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from services.tts.settings import XttsSettings
from services.tts.synthesizer import SynthesisOptions, VoiceCard
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.errors import InvalidArgument, ModelUnavailable
from speechmesh.common.sentences import bounded

MODEL_ID = "xtts"
FOLDER = "xtts-v2"
FILES = ("config.json", "model.pth", "vocab.json", "speakers_xtts.pth")
# XTTS calls Mandarin "zh-cn"; the API uses ISO 639-1 everywhere.
_TO_XTTS = {"zh": "zh-cn"}
_FRONTENDS = {"ja": "cutlet", "zh": "pypinyin"}
# The import names of the `xtts` extra's packages (pyproject.toml) that load() needs.
_PACKAGES = ("TTS", "torch")
# Shown to API clients (`/v1/models/`, the error of a request naming xtts): no server paths.
NEEDS_EXTRA = "XTTS-v2 needs the optional 'xtts' extra (coqui-tts and torch): make install EXTRAS=xtts"


class XttsSynthesizer:
    def __init__(self, models_dir: Path, settings: XttsSettings) -> None:
        self._path = models_dir / FOLDER
        self._settings = settings
        self._model: Any = None
        self._cards: dict[str, VoiceCard] = {}
        self._speakers: dict[str, str] = {}  # voice id -> speaker name in speakers_xtts.pth
        self._rate = 24000

    def load(self) -> None:
        if missing_packages():
            raise ModelUnavailable(NEEDS_EXTRA)
        missing = [name for name in FILES if not (self._path / name).is_file()]
        if missing:
            raise ModelUnavailable(
                f"XTTS-v2 weights are not installed on this server (missing {', '.join(missing)} in the models "
                "folder's xtts-v2 folder; see docs/deploy.md)",
                detail=f"looked in {self._path}/",
            )
        try:
            import torch
            from TTS.tts.configs.xtts_config import XttsConfig
            from TTS.tts.models.xtts import Xtts
        except ImportError as error:
            raise ModelUnavailable(
                "XTTS-v2 weights are installed but the package coqui-tts (import TTS) and torch are not "
                f"({error.name} is missing)",
                detail=f"weights in {self._path}/",
            ) from error

        if self._settings.threads:
            torch.set_num_threads(self._settings.threads)
        try:
            config = XttsConfig()
            config.load_json(str(self._path / "config.json"))
            model = Xtts(config)
            model.load_checkpoint(config, checkpoint_dir=str(self._path), eval=True, use_deepspeed=False)
        except (OSError, ValueError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError) as error:
            raise ModelUnavailable(
                "This server cannot read XTTS-v2 from its weights; the service's log says why.",
                detail=f"{self._path}/: {error}",
            ) from error
        self._model = model
        self._rate = int(config.audio.output_sample_rate)
        languages = tuple(
            code for code in dict.fromkeys(code.split("-")[0] for code in config.languages) if frontend_installed(code)
        )
        for speaker in sorted(model.speaker_manager.speakers):
            card = VoiceCard(
                id=f"xtts-{_slug(speaker)}",
                name=speaker,
                model=MODEL_ID,
                language="en",
                locale="en",
                gender="neutral",  # speakers_xtts.pth does not record it
                sample_rate=self._rate,
                languages=languages,
            )
            self._cards[card.id] = card
            self._speakers[card.id] = speaker
        if not self._cards:
            raise ModelUnavailable("XTTS-v2's speakers_xtts.pth holds no speakers", detail=str(self._path))

    def warm_up(self) -> None:
        voice = next(iter(self._cards))
        for _ in self.synthesize("Hello.", SynthesisOptions(voice, "en", 1.0)):
            pass

    def voices(self) -> Sequence[VoiceCard]:
        return list(self._cards.values())

    def synthesize(self, text: str, options: SynthesisOptions) -> Iterator[Pcm]:
        card = self._cards[options.voice]
        language = options.language or card.language
        if not card.speaks(language):
            raise InvalidArgument(f"XTTS speaks {', '.join(card.languages)}; not '{language}'.", param="language")
        latents = self._model.speaker_manager.speakers[self._speakers[options.voice]]
        # XTTS's GPT takes at most 400 tokens, and its own splitting (enable_text_splitting)
        # needs spaCy, which coqui-tts does not install: cut at its per-language limit here.
        limit = self._model.tokenizer.char_limits.get(language, 250)
        for piece in bounded(text, limit):
            output = self._model.inference(
                piece,
                _TO_XTTS.get(language, language),
                latents["gpt_cond_latent"],
                latents["speaker_embedding"],
                speed=options.speed,
            )
            yield Pcm(np.asarray(output["wav"], dtype=np.float32), self._rate)


def missing_packages() -> list[str]:
    """Which of the `xtts` extra's packages cannot be imported here, found without importing
    them (torch alone takes seconds): a lean install's service starts as fast as before."""
    return [name for name in _PACKAGES if not _importable(name)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses it; a module without a spec
        return False


def frontend_installed(language: str) -> bool:
    """XTTS romanizes Japanese with cutlet and Chinese with pypinyin, optional extras of
    coqui-tts; without them those languages fail at the first request, so are not offered."""
    module = _FRONTENDS.get(language)
    return module is None or _importable(module)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
