"""Apertium (rule-based machine translation) as the chat service's `Translator`.

Runs Debian's `apertium` command, one process per call, with the text on stdin (never in
argv, where a leading '-' would read as an option). Apertium is shallow-transfer: fast
(a few hundred milliseconds a sentence, most of it starting the pipeline), small, offline
and literal rather than fluent, which suits translating what a speaker said.

Each installed language pair package (`apertium-eng-spa`, ...) adds one "mode" per
direction to Apertium's data folder; `apertium -l` lists them. Modes are named by
ISO 639-3 codes (`eng-spa`) in newer packages and by ISO 639-1 codes (`en-gl`) in older
ones; `pairs()` speaks ISO 639-1 and `mode()` says which Apertium mode serves a pair (for
a response's "apertium eng-spa").
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterable
from pathlib import PurePath

from speechmesh.common.errors import InvalidArgument, ModelUnavailable, UpstreamUnavailable

_SPACES = re.compile(r"[ \t]{2,}")
log = logging.getLogger(__name__)

# What `make run` installs (the Makefile's APT_PACKAGES): the CLI and its language pairs.
DEBIAN_PACKAGES = (
    "apertium",
    "apertium-eng-spa",
    "apertium-eng-cat",
    "apertium-en-gl",
    "apertium-fr-es",
    "apertium-es-pt",
    "apertium-spa-ita",
    "apertium-fra-cat",
    "apertium-eo-en",
)
_INSTALL_HINT = f"Debian packages {' '.join(DEBIAN_PACKAGES)}"
# Apertium's ISO 639-3 codes (and a few ISO 639-2/B ones) of the languages that have an
# ISO 639-1 code. A language without one (Asturian, "ast") cannot be asked for through
# `pairs()`, so its modes are left out.
_ISO_639_1 = {
    "afr": "af", "amh": "am", "ara": "ar", "arg": "an", "aze": "az", "bak": "ba", "bel": "be",
    "ben": "bn", "bos": "bs", "bre": "br", "bul": "bg", "cat": "ca", "ces": "cs", "chv": "cv",
    "cos": "co", "cym": "cy", "cze": "cs", "dan": "da", "deu": "de", "dut": "nl", "ell": "el",
    "eng": "en", "epo": "eo", "est": "et", "eus": "eu", "fao": "fo", "fas": "fa", "fin": "fi",
    "fra": "fr", "fre": "fr", "fry": "fy", "ger": "de", "gla": "gd", "gle": "ga", "glg": "gl",
    "glv": "gv", "heb": "he", "hin": "hi", "hrv": "hr", "hye": "hy", "ido": "io", "ina": "ia",
    "ind": "id", "isl": "is", "ita": "it", "jpn": "ja", "kat": "ka", "kaz": "kk", "kir": "ky",
    "kor": "ko", "kur": "ku", "lat": "la", "lav": "lv", "lit": "lt", "ltz": "lb", "mar": "mr",
    "mkd": "mk", "mlt": "mt", "msa": "ms", "nld": "nl", "nno": "nn", "nob": "nb", "oci": "oc",
    "pol": "pl", "por": "pt", "ron": "ro", "rus": "ru", "slk": "sk", "slv": "sl", "sme": "se",
    "spa": "es", "sqi": "sq", "srd": "sc", "srp": "sr", "swa": "sw", "swe": "sv", "tat": "tt",
    "tur": "tr", "ukr": "uk", "urd": "ur", "uzb": "uz", "zho": "zh",
}  # fmt: skip
# One side of a mode name: a language code, maybe with a variant ("cat_valencia", "pt_BR").
_SIDE = re.compile(r"([a-z]{2,3})(?:_([A-Za-z0-9_]+))?")
# A path in an error line (clients read the message; the log keeps the whole line).
_PATH = re.compile(r"(?<![\w.])/(?:[^\s'\"/]+/)+")
# Warm-up: one short sentence through one pair, enough to page in that pair's files.
_WARM_UP_TEXT = "The house is big."


class ApertiumTranslator:
    def __init__(self, executable: str = "apertium", timeout: float = 30.0) -> None:
        self._executable = executable
        self._timeout = timeout
        self._path = ""
        self._modes: dict[tuple[str, str], str] = {}

    def load(self) -> None:
        path = shutil.which(self._executable)
        if path is None:
            # `executable` may be a configured path, which clients must not see.
            command = PurePath(self._executable).name
            raise ModelUnavailable(
                f"The '{command}' command is not installed ({_INSTALL_HINT}).", detail=self._executable
            )
        self._path = path
        try:
            listing = self._run(["-l"], "")
        except UpstreamUnavailable as error:
            raise ModelUnavailable(f"'apertium -l' failed ({_INSTALL_HINT}).", detail=error.message) from error
        modes = parse_modes(listing.splitlines())
        if not modes:
            raise ModelUnavailable(f"Apertium has no language pairs installed ({_INSTALL_HINT}).", detail=path)
        self._modes = modes
        log.info("apertium pairs", extra={"modes": sorted(modes.values())})

    def warm_up(self) -> None:
        # One pair, not all: each call starts a fresh pipeline anyway, so warming only
        # pages in files; this also proves the pipeline's tools (lt-proc, ...) run.
        pair = ("en", "es") if ("en", "es") in self._modes else min(self._modes)
        try:
            self.translate(_WARM_UP_TEXT, *pair)
        except UpstreamUnavailable as error:
            raise ModelUnavailable(f"Apertium's {self._modes[pair]} mode does not run: {error.message}") from error

    def pairs(self) -> frozenset[tuple[str, str]]:
        return frozenset(self._modes)

    def mode(self, source: str, target: str) -> str:
        """The Apertium mode that translates `source` to `target` (ISO 639-1), e.g. "eng-spa"."""
        mode = self._modes.get((source, target))
        if mode is None:
            raise InvalidArgument(
                f"Apertium does not translate '{source}' to '{target}' on this server.", source=source, target=target
            )
        return mode

    def translate(self, text: str, source: str, target: str) -> str:
        if not text.strip():
            return ""
        mode = self.mode(source, target)
        # -u: no '*' marks on unknown words (and no '@'/'#' ones: it makes the generator
        # run `lt-proc -n`), so the text can be spoken. Newlines pass through; the
        # doubled spaces its transfer rules leave ("el capital  de") do not.
        return _SPACES.sub(" ", self._run(["-u", mode], text)).strip()

    def _run(self, arguments: list[str], text: str) -> str:
        # `apertium` is a shell script that starts a pipeline of ~10 processes: its own
        # session lets a timeout kill all of them, not only the script (the others would
        # keep stdout open and the read waiting).
        with subprocess.Popen(
            [self._path, *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        ) as process:
            try:
                stdout, stderr = process.communicate(text.encode("utf-8", "replace"), timeout=self._timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                raise UpstreamUnavailable(
                    f"Apertium did not answer within {self._timeout:g} s; retry with a shorter text."
                ) from None
        if process.returncode != 0:
            # Some errors ("Install an UTF-8 locale") go to stdout.
            output = (stderr or stdout).decode("utf-8", "replace").strip()
            log.warning("apertium failed", extra={"arguments": arguments, "exit": process.returncode, "stderr": output})
            first = _PATH.sub("", output.splitlines()[0]) if output else "no message"
            raise UpstreamUnavailable(f"Apertium failed (exit {process.returncode}): {first}")
        return stdout.decode("utf-8", "replace")


def parse_modes(names: Iterable[str]) -> dict[tuple[str, str], str]:
    """The mode serving each (source, target) ISO 639-1 pair among Apertium's mode names.

    Kept: `<source>-<target>` names. Skipped: names with more parts, which are pipeline
    stages or experiments (`en-eo-bytecode`, `eco-es-fr`, `xxx-yyy-tagger`), and languages
    without an ISO 639-1 code. A plain mode (`spa-eng`) is preferred to a regional or
    orthographic variant (`spa-eng_US`, `eng-cat_valencia`), which serves a pair only when
    no plain mode does; then ISO 639-3 names (current packages) over 2-letter ones.
    """
    best: dict[tuple[str, str], tuple[tuple[bool, bool, int, str], str]] = {}
    for raw in names:
        name = raw.strip()
        sides = name.split("-")
        if len(sides) != 2:
            continue
        matches = [_SIDE.fullmatch(side) for side in sides]
        if matches[0] is None or matches[1] is None:
            continue
        codes = [_iso_639_1(match.group(1)) for match in (matches[0], matches[1])]
        if codes[0] is None or codes[1] is None or codes[0] == codes[1]:
            continue
        variant = any(match.group(2) for match in (matches[0], matches[1]))
        two_letter = len(matches[0].group(1)) == 2
        rank = (variant, two_letter, len(name), name)
        pair = (codes[0], codes[1])
        if pair not in best or rank < best[pair][0]:
            best[pair] = (rank, name)
    return {pair: name for pair, (_, name) in best.items()}


def _iso_639_1(code: str) -> str | None:
    return code if len(code) == 2 else _ISO_639_1.get(code)
