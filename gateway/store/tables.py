"""The gateway's tables (SQLAlchemy Core), the same as the columns earlier releases created."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, Float, Integer, LargeBinary, MetaData, String, Table

metadata = MetaData()

# Only a SHA-256 of each secret is stored; its first 12 characters stay in clear so people
# can tell their keys apart in listings.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_hash", String, nullable=False, unique=True),
    Column("prefix", String, nullable=False),
    Column("name", String, nullable=False),
    Column("plan", String, nullable=False),
    Column("created_at", String, nullable=False),
    Column("revoked_at", String),
)

# One row: the secret that signs URLs (gateway/signing.py), made once and shared by every
# gateway process on this database.
url_signing_secret = Table(
    "url_signing_secret",
    metadata,
    Column("id", Integer, CheckConstraint("id = 1"), primary_key=True),
    Column("secret", LargeBinary, nullable=False),
)

clone_audit = Table(
    "clone_audit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_id", Integer, nullable=False),
    Column("created_at", String, nullable=False),
    Column("reference_sha256", String, nullable=False),
    Column("reference_bytes", Integer, nullable=False),
    Column("model", String, nullable=False),
    Column("base_voice", String, nullable=False),
    Column("characters", Integer, nullable=False),
    Column("similarity", Float, nullable=False),
)
