"""Create the idempotency_key table: one row per (user, Idempotency-Key), expiring.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.CHAR(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        # json, not jsonb: the first response's key order is kept for byte-identical replays.
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("conversation_id", sa.BigInteger(), nullable=True),
        sa.Column("user_message_id", sa.BigInteger(), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key"),
    )
    # The lazy purge deletes a user's expired keys: a range of this index.
    op.create_index(
        "ix_idempotency_key_user_id_expires_at", "idempotency_key", ["user_id", "expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_idempotency_key_user_id_expires_at", table_name="idempotency_key")
    op.drop_table("idempotency_key")
