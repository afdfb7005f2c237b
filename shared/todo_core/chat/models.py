"""The Conversation and Message model families.

Messages are ordered by *turn*: a user message opens a turn keyed by its own id, and the
assistant's reply carries that key in ``reply_to_id``. Reading in ``(turn, id)`` order keeps each
reply right after the question it answers, even when two turns of one conversation run at once.
One expression index serves "the last K messages of a conversation" as a backward index scan.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, StringConstraints
from pydantic import Field as PydanticField
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Identity,
    Index,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from todo_core.chat.types import Role
from todo_core.db import UTCDateTime, UTCTimestamp, utc_now
from todo_core.ids import MAX_ID, USER_ID_MAX
from todo_core.text import NON_BLANK_TEXT_PATTERN, NonBlankText, Trimmed

TITLE_MAX = 200
CONVERSATION_NOT_FOUND = "Conversation not found"

TURN_KEY_SQL = "coalesce(reply_to_id, id)"
"""The turn a message belongs to: its own id for a user message, the question's for a reply."""


class Conversation(SQLModel, table=True):
    __tablename__ = "conversation"
    # "A user's conversations, most recently active first" is a backward scan of this index.
    __table_args__ = (
        Index("ix_conversation_user_id_updated_at_id", "user_id", "updated_at", "id"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=False), primary_key=True)
    )
    user_id: str = Field(max_length=USER_ID_MAX)
    title: str = Field(max_length=TITLE_MAX)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class Message(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (
        Index("ix_message_conversation_turn", "conversation_id", text(TURN_KEY_SQL), "id"),
        # At most one reply per question: a retried or raced turn never stores a second answer.
        Index("ux_message_reply_to_id", "reply_to_id", unique=True),
        CheckConstraint("role IN ('user', 'assistant')", name="ck_message_role"),
        CheckConstraint(
            "(role = 'user') = (reply_to_id IS NULL)", name="ck_message_reply_only_for_assistant"
        ),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=False), primary_key=True)
    )
    conversation_id: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("conversation.id", ondelete="CASCADE"), nullable=False
        )
    )
    user_id: str = Field(max_length=USER_ID_MAX)
    role: str = Field(max_length=16)
    content: str = Field(sa_column=Column(Text, nullable=False))
    tool_calls: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSONB, nullable=True)
    )
    reply_to_id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, ForeignKey("message.id", ondelete="CASCADE"), nullable=True),
    )
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class ToolCall(SQLModel):
    """One action the assistant took: what it called, with what, and what came back."""

    name: str
    arguments: dict[str, Any]
    result: dict[str, Any]


def _document_message(schema: dict[str, Any]) -> None:
    schema["pattern"] = NON_BLANK_TEXT_PATTERN


def json_integer(value: Any) -> Any:
    """What JSON Schema calls an integer: a number with no fractional part (``1`` or ``1.0``),
    never a string or a boolean (which pydantic's lax mode would convert)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


class ChatRequestBase(SQLModel):
    """One user turn. Without ``conversation_id`` a new conversation is started.

    The message's length limit is a deployment setting (``CHAT_MAX_MESSAGE_CHARS``): the route's
    :class:`todo_core.chat.routes.ChatRequest` adds it."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    conversation_id: (
        Annotated[int, PydanticField(ge=1, le=MAX_ID), BeforeValidator(json_integer)] | None
    ) = None
    message: Annotated[
        str,
        StringConstraints(min_length=1),  # before the trimming: see tasks.models.Title
        Trimmed,
        NonBlankText,
        PydanticField(json_schema_extra=_document_message),
    ]


class ChatResponse(SQLModel):
    conversation_id: int
    response: str
    tool_calls: list[ToolCall]


class ConversationPublic(SQLModel):
    id: int
    title: str
    created_at: UTCTimestamp
    updated_at: UTCTimestamp


class ConversationPage(SQLModel):
    items: list[ConversationPublic]
    next_cursor: str | None


class MessagePublic(SQLModel):
    id: int
    role: Role
    content: str
    tool_calls: list[ToolCall] | None
    reply_to_id: int | None
    created_at: UTCTimestamp


class MessagePage(SQLModel):
    """A page of messages, oldest first; ``next_cursor`` fetches the page of older ones."""

    items: list[MessagePublic]
    next_cursor: str | None
