"""`python -m gateway.keys`: create, list, revoke; secrets are shown once and stored hashed."""

from __future__ import annotations

import sqlite3

from gateway import keys


def test_create_list_revoke(tmp_path, monkeypatch, capsys) -> None:
    database = tmp_path / "keys.db"
    monkeypatch.setenv("SPEECHMESH_GATEWAY_DATABASE_PATH", str(database))
    assert keys.main(["create", "--name", "ci", "--plan", "enterprise"]) == 0
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("sk-tts-") and len(secret) > 40
    stored = sqlite3.connect(database).execute("SELECT key_hash, prefix, plan FROM api_keys").fetchone()
    assert secret not in stored and stored[1] == secret[:12] and stored[2] == "enterprise"

    assert keys.main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "enterprise" in listing and "active" in listing and secret not in listing

    assert keys.main(["revoke", "1"]) == 0
    assert keys.main(["revoke", "1"]) == 1
    keys.main(["list"])
    assert "revoked" in capsys.readouterr().out
