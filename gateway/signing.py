"""Signed URLs: links the gateway hands to an authenticated caller that work without a key.

A voice listing's `preview_url` must play in an `<audio src>` (which cannot send an
Authorization header), yet an open preview route lets anyone make the server synthesize.
The listing (an authenticated call) therefore signs each URL: HMAC-SHA256 over the path and
an expiry time, with a secret the key store keeps (or the operator sets, so that every
gateway replica signs alike). A signature grants that one path until it expires, and
nothing else; an API key never appears in a URL (URLs end up in access logs).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time

# Expiry times are rounded up to the hour so that URLs stay the same for an hour (and can
# be cached by clients) while still expiring about a day after they were handed out.
_ROUND_SECONDS = 3600
# HMAC-SHA256 keys shorter than this are guessable.
_SECRET_MIN_BYTES = 16
# str.isdigit() also takes "²"; these take only what `query` writes.
EXPIRES_PATTERN = "^[0-9]{1,12}$"
SIGNATURE_PATTERN = "^[0-9a-f]{64}$"
_EXPIRES = re.compile(EXPIRES_PATTERN.strip("^$"), re.ASCII)
_SIGNATURE = re.compile(SIGNATURE_PATTERN.strip("^$"), re.ASCII)


class UrlSigner:
    def __init__(self, secret: bytes, lifetime_seconds: int) -> None:
        if len(secret) < _SECRET_MIN_BYTES:
            raise ValueError(f"a URL-signing secret needs at least {_SECRET_MIN_BYTES} bytes")
        self._secret = secret
        self._lifetime = lifetime_seconds

    def _signature(self, path: str, expires: int) -> str:
        return hmac.new(self._secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def query(self, path: str, now: float | None = None) -> str:
        """The query string (`expires=...&signature=...`) that grants `path`."""
        moment = time.time() if now is None else now
        expires = math.ceil((moment + self._lifetime) / _ROUND_SECONDS) * _ROUND_SECONDS
        return f"expires={expires}&signature={self._signature(path, expires)}"

    def verify(self, path: str, expires: str | None, signature: str | None) -> bool:
        """Whether `signature` grants `path` and has not expired. Anything not shaped like
        what `query` makes (ASCII digits, 64 lowercase hex digits) is simply no grant."""
        if expires is None or signature is None:
            return False
        if not _EXPIRES.fullmatch(expires) or not _SIGNATURE.fullmatch(signature):
            return False
        if int(expires) < time.time():
            return False
        return hmac.compare_digest(self._signature(path, int(expires)), signature)
