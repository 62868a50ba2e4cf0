"""The platform: credit balances, ledger and holds; webhook secrets; tasks; stored results."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_balances",
        sa.Column("key_id", sa.Integer, primary_key=True),
        sa.Column("balance", sa.BigInteger, sa.CheckConstraint("balance >= 0"), nullable=False),
    )
    op.create_table(
        "credit_ledger",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key_id", sa.Integer, nullable=False, index=True),
        sa.Column("created_at", sa.String, nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("route", sa.String, nullable=False),
        sa.Column("reference", sa.String, nullable=False),
    )
    op.create_table(
        "credit_holds",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("route", sa.String, nullable=False),
        sa.Column("created_at", sa.String, nullable=False),
        sa.Column("expires_at", sa.Float, index=True),
    )
    op.create_table(
        "webhook_secrets",
        sa.Column("key_id", sa.Integer, primary_key=True),
        sa.Column("secret", sa.String, nullable=False),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("key_id", sa.Integer, nullable=False, index=True),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("route", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False, index=True),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("input_id", sa.String),
        sa.Column("hold_id", sa.String),
        sa.Column("credits_used", sa.BigInteger, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.String, nullable=False),
        sa.Column("completed_at", sa.String),
        sa.Column("lease_until", sa.Float),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("webhook_url", sa.Text),
        sa.Column("webhook_state", sa.String),
        sa.Column("webhook_attempts", sa.Integer, nullable=False),
        sa.Column("webhook_due_at", sa.Float),
        sa.Column("queued_at", sa.Float),
    )
    op.create_table(
        "results",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("content_type", sa.String, nullable=False),
        sa.Column("filename", sa.String, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.String, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False, index=True),
    )


def downgrade() -> None:
    for table in ("results", "tasks", "webhook_secrets", "credit_holds", "credit_ledger", "credit_balances"):
        op.drop_table(table)
