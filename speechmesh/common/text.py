"""What a text to speak may be, checked alike by the gateway and the services.

It must hold something besides whitespace. And text reaches engines that hand it to C
libraries (espeak-ng inside Piper, Festival's Scheme reader, ONNX tokenizers): a NUL ends
their strings early or crashes them, and a lone surrogate cannot even be encoded into a
protobuf string. Such characters are refused as a bad request instead: C0 and C1 control
characters other than the whitespace ones (tab, newline, carriage return, vertical tab,
form feed), surrogate code points, and the Unicode noncharacters (U+FDD0-U+FDEF and the
last two code points of every plane).
"""

from __future__ import annotations

import re

_FORBIDDEN = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17))
    + "]"
)


def text_problem(text: str) -> str | None:
    """Why `text` cannot be spoken as it is ("'text' " + it reads as a sentence), or None."""
    if not text.strip():
        return "must contain something to say; it is empty or only whitespace"
    found = _FORBIDDEN.search(text)
    if found is None:
        return None
    return (
        f"contains the character U+{ord(found.group()):04X} at position {found.start()}, "
        "which cannot be spoken (control characters, lone surrogates and noncharacters are not accepted)"
    )
