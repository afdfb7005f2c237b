"""The conversation history a chat UI pages through: a user's conversations, one
conversation's messages, and deleting a conversation. Nothing here needs the assistant, so the
history functions load none of it at cold start."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, delete, literal_column, select, tuple_
from sqlmodel import Session, col

from todo_core.chat.models import (
    CONVERSATION_NOT_FOUND,
    TURN_KEY_SQL,
    Conversation,
    ConversationPage,
    ConversationPublic,
    Message,
    MessagePage,
    MessagePublic,
)
from todo_core.db import stored_id
from todo_core.errors import NotFound
from todo_core.pagination import decode_cursor, encode_cursor, from_timestamp_key, timestamp_key


def list_conversations(
    session: Session, *, user_id: str, limit: int, cursor: str | None = None
) -> ConversationPage:
    """The user's conversations, most recently active first, one page at a time."""
    query = select(Conversation).where(col(Conversation.user_id) == user_id)
    if cursor is not None:
        updated_key, conversation_id = decode_cursor(cursor)
        query = query.where(
            tuple_(col(Conversation.updated_at), col(Conversation.id))
            < tuple_(from_timestamp_key(updated_key), conversation_id)
        )
    query = query.order_by(col(Conversation.updated_at).desc(), col(Conversation.id).desc())
    rows = list(session.scalars(query.limit(limit + 1)))
    page, more = rows[:limit], len(rows) > limit
    next_cursor = None
    if more and page:
        last = page[-1]
        next_cursor = encode_cursor(timestamp_key(last.updated_at), stored_id(last.id))
    return ConversationPage(
        items=[ConversationPublic.model_validate(c) for c in page], next_cursor=next_cursor
    )


def list_messages(
    session: Session, *, user_id: str, conversation_id: int, limit: int, cursor: str | None = None
) -> MessagePage:
    """A page of the conversation's messages in turn order, oldest first; the first page holds
    the most recent ones and ``next_cursor`` leads to older ones."""
    owned = session.scalar(
        select(col(Conversation.id)).where(
            col(Conversation.id) == conversation_id, col(Conversation.user_id) == user_id
        )
    )
    if owned is None:
        raise NotFound(CONVERSATION_NOT_FOUND)
    turn_key: Any = literal_column(TURN_KEY_SQL, BigInteger)
    query = select(Message, turn_key.label("turn")).where(
        col(Message.conversation_id) == conversation_id
    )
    if cursor is not None:
        turn, message_id = decode_cursor(cursor)
        query = query.where(tuple_(turn_key, col(Message.id)) < tuple_(turn, message_id))
    query = query.order_by(turn_key.desc(), col(Message.id).desc()).limit(limit + 1)
    rows = session.execute(query).all()
    page, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor(page[-1].turn, stored_id(page[-1].Message.id)) if more else None
    items = [MessagePublic.model_validate(row.Message) for row in reversed(page)]
    return MessagePage(items=items, next_cursor=next_cursor)


def delete_conversation(session: Session, *, user_id: str, conversation_id: int) -> None:
    """Delete the conversation and, by cascade, all its messages."""
    deleted = session.execute(
        delete(Conversation)
        .where(col(Conversation.id) == conversation_id, col(Conversation.user_id) == user_id)
        .returning(col(Conversation.id))
    ).scalar_one_or_none()
    session.commit()
    if deleted is None:
        raise NotFound(CONVERSATION_NOT_FOUND)
