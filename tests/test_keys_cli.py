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


def test_credits_are_granted_and_shown_and_webhook_secrets_made(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SPEECHMESH_GATEWAY_DATABASE_PATH", str(tmp_path / "keys.db"))
    assert keys.main(["create", "--name", "billing", "--credits", "5"]) == 0
    capsys.readouterr()
    assert keys.main(["credits", "1"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == "balance\t5" and shown[1].split("\t")[1:3] == ["grant", "5"]
    assert keys.main(["credits", "1", "--grant", "10", "--note", "invoice 42"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == "balance\t15" and shown[1].endswith("invoice 42")
    assert keys.main(["credits", "1", "--grant", "0"]) == 1
    assert keys.main(["webhook-secret", "1"]) == 0
    first = capsys.readouterr().out.strip()
    assert first.startswith("whsec_") and len(first) > 40
    keys.main(["webhook-secret", "1"])
    assert capsys.readouterr().out.strip() not in ("", first)  # a new one each time
