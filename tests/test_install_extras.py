"""The lean default install: `make install`/`make run` leave torch and transformers out, and CI
(`make test`) installs and tests every extra. Reads the Makefile and pyproject.toml; no pip."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "torchaudio", "transformers", "coqui-tts")


def _extras() -> dict[str, list[str]]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return pyproject["project"]["optional-dependencies"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def _makefile_value(name: str) -> str:
    (value,) = re.findall(rf"^{name} :?= ?(.*)$", (ROOT / "Makefile").read_text(encoding="utf-8"), flags=re.MULTILINE)
    return value.strip()


def test_the_default_install_leaves_the_heavy_engines_out() -> None:
    extras = _extras()
    lean = _makefile_value("LEAN_EXTRAS").split(",")
    assert set(lean) == {"tts", "stt", "audio", "chat", "gateway", "run"}
    for extra in lean:
        assert not _names(extras[extra]) & set(HEAVY), f"the lean extra {extra!r} pulls a heavy package"
    assert set(HEAVY) <= _names(extras["xtts"])
    # `make run` runs `make proto` (grpc_tools) and supervisord.
    assert {"grpcio-tools", "supervisor"} <= _names(extras["run"])


def test_ci_installs_every_extra() -> None:
    extras = _extras()
    (everything,) = extras["all"]
    match = re.fullmatch(r"speechmesh\[(.+)\]", everything)
    assert match
    listed = set(match.group(1).split(","))
    assert listed == set(extras) - {"all"}
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^test lint: CI_EXTRAS := all$", makefile, flags=re.MULTILINE)
