"""The gateway's tables (SQLAlchemy Core), the same as the columns earlier releases created."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Column, Float, Integer, LargeBinary, MetaData, String, Table, Text

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

# Credits (gateway/store/credits.py): one balance per key, never below zero; every grant and
# charge in the ledger; credits held by requests and tasks while they run.
credit_balances = Table(
    "credit_balances",
    metadata,
    Column("key_id", Integer, primary_key=True),
    Column("balance", BigInteger, CheckConstraint("balance >= 0"), nullable=False),
)

credit_ledger = Table(
    "credit_ledger",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_id", Integer, nullable=False, index=True),
    Column("created_at", String, nullable=False),
    Column("kind", String, nullable=False),  # grant | charge
    Column("amount", BigInteger, nullable=False),  # credits added (grant) or taken (charge)
    Column("route", String, nullable=False),
    Column("reference", String, nullable=False),  # request or task id; the grant's note
)

credit_holds = Table(
    "credit_holds",
    metadata,
    Column("id", String, primary_key=True),
    Column("key_id", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("route", String, nullable=False),
    Column("created_at", String, nullable=False),
    # Epoch seconds after which a hold left by a crashed process is released; NULL: a task's,
    # released or charged by the task itself.
    Column("expires_at", Float, index=True),
)

# Webhook signing secrets (Standard Webhooks, "whsec_..."), one per key, shown once.
webhook_secrets = Table(
    "webhook_secrets",
    metadata,
    Column("key_id", Integer, primary_key=True),
    Column("secret", String, nullable=False),
)

# Long-running requests (gateway/tasks/): their state, progress, result and webhook delivery.
tasks = Table(
    "tasks",
    metadata,
    Column("id", String, primary_key=True),
    Column("key_id", Integer, nullable=False, index=True),
    Column("kind", String, nullable=False),
    Column("route", String, nullable=False),
    Column("status", String, nullable=False, index=True),  # queued | running | success | failed
    Column("progress", Float, nullable=False, default=0.0),
    Column("params", Text, nullable=False),  # JSON
    Column("input_id", String),  # the stored upload, deleted once the task ends
    Column("hold_id", String),
    Column("credits_used", BigInteger, nullable=False, default=0),
    Column("error", Text),
    Column("created_at", String, nullable=False),
    Column("completed_at", String),
    # Epoch seconds until which a worker owns the task (running it, or delivering its webhook
    # once it has ended); past it, another worker takes it over.
    Column("lease_until", Float),
    Column("attempts", Integer, nullable=False, default=0),
    Column("webhook_url", Text),
    Column("webhook_state", String),  # pending | delivered | failed
    Column("webhook_attempts", Integer, nullable=False, default=0),
    Column("webhook_due_at", Float),  # when the next delivery attempt is scheduled
    Column("queued_at", Float),  # when its queue message was sent (NULL: not yet)
)

# Stored objects (gateway/store/results.py): task results and uploads waiting for a task.
results = Table(
    "results",
    metadata,
    Column("id", String, primary_key=True),
    Column("key_id", Integer, nullable=False),
    Column("content_type", String, nullable=False),
    Column("filename", String, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", String, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
)

# Voice chat's conversations (gateway/store/conversations.py): each key's, until `expires_at`
# (epoch seconds, pushed on by every save).
conversations = Table(
    "conversations",
    metadata,
    Column("id", String, primary_key=True),
    Column("key_id", Integer, nullable=False, index=True),
    Column("created_at", String, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
)

# Their messages, in the order of `id`. No foreign key (no other table has one, and SQLite
# enforces them only when asked): the store deletes a conversation's messages with it.
conversation_messages = Table(
    "conversation_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", String, nullable=False, index=True),
    Column("role", String, nullable=False),  # user | assistant
    Column("content", Text, nullable=False),
    Column("language", String, nullable=False),  # ISO 639-1; "" when unknown
    Column("created_at", String, nullable=False),
)
