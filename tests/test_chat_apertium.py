"""The Apertium translator: real `apertium` runs (Debian packages in the Makefile's
APT_PACKAGES), plus fake executables for the failures Apertium will not produce on demand."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services.chat.engines.apertium import ApertiumTranslator, parse_modes
from speechmesh.common.errors import InvalidArgument, ModelUnavailable, UpstreamUnavailable

# What the pair packages in APT_PACKAGES install, both directions each.
INSTALLED = {
    ("en", "es"): "eng-spa",
    ("es", "en"): "spa-eng",
    ("en", "ca"): "eng-cat",
    ("ca", "en"): "cat-eng",
    ("en", "gl"): "en-gl",
    ("gl", "en"): "gl-en",
    ("fr", "es"): "fr-es",
    ("es", "fr"): "es-fr",
    ("es", "pt"): "es-pt",
    ("pt", "es"): "pt-es",
    ("es", "it"): "spa-ita",
    ("it", "es"): "ita-spa",
    ("fr", "ca"): "fra-cat",
    ("ca", "fr"): "cat-fra",
    ("en", "eo"): "en-eo",
    ("eo", "en"): "eo-en",
}


@pytest.fixture(scope="module")
def apertium() -> ApertiumTranslator:
    translator = ApertiumTranslator()
    translator.load()
    translator.warm_up()
    return translator


def test_pairs_and_modes(apertium: ApertiumTranslator) -> None:
    assert apertium.pairs() >= set(INSTALLED)
    # The plain modes, not spa-eng_US, eng-cat_valencia, es-pt_BR or en-eo-bytecode.
    assert {pair: apertium.mode(*pair) for pair in INSTALLED} == INSTALLED


def test_translates_both_ways(apertium: ApertiumTranslator) -> None:
    started = time.perf_counter()
    spanish = apertium.translate("The house is big.", "en", "es")
    elapsed = time.perf_counter() - started
    assert "casa" in spanish.lower()
    assert spanish == spanish.strip() and "*" not in spanish
    assert "house" in apertium.translate("La casa es grande.", "es", "en").lower()
    assert elapsed < 5, f"one sentence took {elapsed:.1f} s"


def test_keeps_lines_and_drops_unknown_word_marks(apertium: ApertiumTranslator) -> None:
    spanish = apertium.translate("The house is big.\n\nThe zorblax is red.", "en", "es")
    lines = spanish.split("\n")
    assert len(lines) == 3 and lines[1] == "", spanish
    assert "casa" in lines[0].lower() and "zorblax" in lines[2] and "*" not in spanish


def test_empty_text_and_unknown_pair(apertium: ApertiumTranslator) -> None:
    assert apertium.translate("", "en", "es") == ""
    assert apertium.translate(" \n\t", "en", "es") == ""
    with pytest.raises(InvalidArgument):
        apertium.translate("Hello.", "en", "ja")
    with pytest.raises(InvalidArgument):
        apertium.mode("ja", "en")


def test_missing_binary_is_unavailable() -> None:
    translator = ApertiumTranslator(executable="/nonexistent/bin/apertium")
    with pytest.raises(ModelUnavailable) as caught:
        translator.load()
    assert "apertium-eng-spa" in caught.value.message
    assert "/nonexistent" not in caught.value.message, "clients must not see server paths"


def fake_apertium(folder: Path, listing: str, translate: str) -> str:
    """An `apertium` that lists `listing` for -l and runs the shell line `translate` otherwise."""
    script = folder / "apertium"
    script.write_text(f'#!/bin/sh\nif [ "$1" = -l ]; then printf "{listing}"; exit 0; fi\n{translate}\n')
    script.chmod(0o755)
    return str(script)


def test_no_pairs_is_unavailable(tmp_path: Path) -> None:
    # What `apertium -l` prints when its modes folder is empty (an unmatched glob).
    translator = ApertiumTranslator(executable=fake_apertium(tmp_path, "  *\\n", "exit 0"))
    with pytest.raises(ModelUnavailable, match="no language pairs"):
        translator.load()


def test_failure_reports_first_stderr_line(tmp_path: Path) -> None:
    failing = "echo \"Error: cannot open '/usr/share/apertium/x/eng-spa.bin'\" >&2; echo second >&2; exit 1"
    translator = ApertiumTranslator(executable=fake_apertium(tmp_path, "  eng-spa\\n", failing))
    translator.load()
    with pytest.raises(UpstreamUnavailable) as caught:
        translator.translate("Hello.", "en", "es")
    assert caught.value.message == "Apertium failed (exit 1): Error: cannot open 'eng-spa.bin'"


def test_timeout_kills_the_pipeline(tmp_path: Path) -> None:
    # The child `sleep` holds stdout open: only killing the process group ends the read.
    translator = ApertiumTranslator(executable=fake_apertium(tmp_path, "  eng-spa\\n", "sleep 30 | cat"), timeout=0.5)
    translator.load()
    started = time.perf_counter()
    with pytest.raises(UpstreamUnavailable, match=r"within 0\.5 s"):
        translator.translate("Hello.", "en", "es")
    assert time.perf_counter() - started < 5


def test_parse_modes() -> None:
    names = [
        "  *",
        "cat-eng_US",
        "cat-eng",
        "eng-cat_valencia",
        "eng-cat_iec2017",
        "en-eo-bytecode",
        "eco-es-fr",
        "es-pt_BR",
        "en-es",
        "eng-spa",
        "ast-spa",
        "nob-nno",
        "xyz-eng",
    ]
    assert parse_modes(names) == {
        ("ca", "en"): "cat-eng",
        # Only variants: the shortest serves.
        ("en", "ca"): "eng-cat_iec2017",
        ("es", "pt"): "es-pt_BR",
        ("en", "es"): "eng-spa",
        ("nb", "nn"): "nob-nno",
    }
