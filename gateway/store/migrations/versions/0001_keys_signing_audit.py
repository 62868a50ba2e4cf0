"""The tables of releases before migrations: API keys, the URL-signing secret, the clone audit.

IF NOT EXISTS: a database those releases made has them already (and no alembic_version).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key_hash", sa.String, nullable=False, unique=True),
        sa.Column("prefix", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("plan", sa.String, nullable=False),
        sa.Column("created_at", sa.String, nullable=False),
        sa.Column("revoked_at", sa.String),
        if_not_exists=True,
    )
    op.create_table(
        "url_signing_secret",
        sa.Column("id", sa.Integer, sa.CheckConstraint("id = 1"), primary_key=True),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "clone_audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String, nullable=False),
        sa.Column("reference_sha256", sa.String, nullable=False),
        sa.Column("reference_bytes", sa.Integer, nullable=False),
        sa.Column("model", sa.String, nullable=False),
        sa.Column("base_voice", sa.String, nullable=False),
        sa.Column("characters", sa.Integer, nullable=False),
        sa.Column("similarity", sa.Float, nullable=False),
        if_not_exists=True,
    )


def downgrade() -> None:
    for table in ("clone_audit", "url_signing_secret", "api_keys"):
        op.drop_table(table)
