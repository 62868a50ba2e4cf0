"""The clone audit log: who cloned which voice when, kept in the gateway's SQLite file.

A cloned voice can impersonate someone, so every clone is recorded: the API key, the
time, a SHA-256 of the reference recording (never the recording itself), the model,
the base voice and the measured similarity.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clone_audit (
    id INTEGER PRIMARY KEY,
    key_id INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    reference_sha256 TEXT NOT NULL,
    reference_bytes INTEGER NOT NULL,
    model TEXT NOT NULL,
    base_voice TEXT NOT NULL,
    characters INTEGER NOT NULL,
    similarity REAL NOT NULL
)
"""


@dataclass(frozen=True)
class CloneRecord:
    key_id: int
    reference_sha256: str
    reference_bytes: int
    model: str
    base_voice: str
    characters: int
    similarity: float
    created_at: str = ""


class CloneAudit:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    def record(self, record: CloneRecord) -> None:
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            self._db.execute(
                "INSERT INTO clone_audit (key_id, created_at, reference_sha256, reference_bytes, model, base_voice,"
                " characters, similarity) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.key_id,
                    created,
                    record.reference_sha256,
                    record.reference_bytes,
                    record.model,
                    record.base_voice,
                    record.characters,
                    record.similarity,
                ),
            )

    def records(self, key_id: int) -> list[CloneRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key_id, reference_sha256, reference_bytes, model, base_voice, characters, similarity,"
                " created_at FROM clone_audit WHERE key_id = ? ORDER BY id",
                (key_id,),
            ).fetchall()
        return [CloneRecord(*row) for row in rows]

    def close(self) -> None:
        self._db.close()
