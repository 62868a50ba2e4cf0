"""API keys in SQLite: only a SHA-256 of each secret is stored.

Keys look like `sk-tts-<43 url-safe characters>`; the first 12 characters are kept
in clear as a prefix so people can tell their keys apart in listings.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

KEY_PREFIX = "sk-tts-"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    name TEXT NOT NULL,
    plan TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
)
"""

# One row: the secret that signs URLs (gateway/signing.py), made once and shared by every
# gateway process on this database.
_SECRET_SCHEMA = """
CREATE TABLE IF NOT EXISTS url_signing_secret (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL
)
"""

_COLUMNS = "id, prefix, name, plan, created_at, revoked_at"


@dataclass(frozen=True)
class ApiKey:
    id: int
    prefix: str
    name: str
    plan: str
    created_at: str
    revoked_at: str | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.execute(_SECRET_SCHEMA)
        self._lock = threading.Lock()

    def url_signing_secret(self) -> bytes:
        """The URL-signing secret, made on first use (the first process to ask wins)."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO url_signing_secret (id, secret) VALUES (1, ?)", (secrets.token_bytes(32),)
            )
            (secret,) = self._db.execute("SELECT secret FROM url_signing_secret WHERE id = 1").fetchone()
        return bytes(secret)

    def create(self, name: str, plan: str) -> tuple[ApiKey, str]:
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO api_keys (key_hash, prefix, name, plan, created_at) VALUES (?, ?, ?, ?, ?)",
                (_hash(secret), secret[:12], name, plan, created),
            )
        return ApiKey(int(cursor.lastrowid or 0), secret[:12], name, plan, created, None), secret

    def lookup(self, secret: str) -> ApiKey | None:
        """The live key for `secret`, or None if it is unknown or revoked."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
                (_hash(secret),),
            ).fetchone()
        return ApiKey(*row) if row else None

    def list(self) -> list[ApiKey]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY id").fetchall()
        return [ApiKey(*row) for row in rows]

    def revoke(self, key_id: int) -> bool:
        revoked = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            cursor = self._db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (revoked, key_id)
            )
        return cursor.rowcount == 1

    def close(self) -> None:
        self._db.close()
