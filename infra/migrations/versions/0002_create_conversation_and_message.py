"""Create the conversation and message tables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str) -> sa.Column[sa.DateTime]:
    return sa.Column(
        name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.current_timestamp()
    )


def upgrade() -> None:
    op.create_table(
        "conversation",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
    )
    # "A user's conversations, most recently active first": a backward scan of this index.
    op.create_index(
        "ix_conversation_user_id_updated_at_id", "conversation", ["user_id", "updated_at", "id"]
    )
    op.create_table(
        "message",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column(
            "conversation_id",
            sa.BigInteger(),
            sa.ForeignKey("conversation.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("tool_calls", postgresql.JSONB(), nullable=True),
        sa.Column(
            "reply_to_id",
            sa.BigInteger(),
            sa.ForeignKey("message.id", ondelete="CASCADE"),
            nullable=True,
        ),
        _timestamp("created_at"),
        sa.CheckConstraint("role IN ('user', 'assistant')", name="ck_message_role"),
        sa.CheckConstraint(
            "(role = 'user') = (reply_to_id IS NULL)", name="ck_message_reply_only_for_assistant"
        ),
    )
    # "The last K messages of a conversation, in turn order": a backward scan of this index,
    # the same cost for 10 messages and for 100,000. A reply sorts right after its question.
    op.create_index(
        "ix_message_conversation_turn",
        "message",
        ["conversation_id", sa.text("coalesce(reply_to_id, id)"), "id"],
    )
    # At most one reply per question: a retried turn can never store a second answer.
    op.create_index("ux_message_reply_to_id", "message", ["reply_to_id"], unique=True)


def downgrade() -> None:
    op.drop_table("message")
    op.drop_index("ix_conversation_user_id_updated_at_id", table_name="conversation")
    op.drop_table("conversation")
