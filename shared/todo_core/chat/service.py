"""Chat operations: the stateless turn, and the conversation history a chat UI pages through.

Nothing is cached between calls: every turn reads what it needs from the database, so any
instance can serve any turn of any conversation.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlmodel import Session, col

from todo_core.chat.assistant import create_assistant
from todo_core.chat.models import (
    TITLE_MAX,
    ChatResponse,
    Conversation,
    ConversationPage,
    ConversationPublic,
    Message,
    MessagePage,
    MessagePublic,
)
from todo_core.chat.store import CONVERSATION_NOT_FOUND, chat_store_for
from todo_core.errors import AppError, AssistantFailed, NotFound
from todo_core.observability import ASSISTANT_ERRORS, count, logger
from todo_core.pagination import (
    decode_cursor,
    encode_cursor,
    from_timestamp_key,
    timestamp_key,
)
from todo_core.settings import Settings

TITLE_WORDS_MAX = 60


def title_from_message(message: str) -> str:
    """A conversation title: the first message on one line, cut at a word near 60 characters."""
    line = " ".join(message.split())
    if len(line) <= TITLE_WORDS_MAX:
        return line
    cut = line[:TITLE_WORDS_MAX].rsplit(" ", 1)[0] or line[:TITLE_WORDS_MAX]
    return (cut + "…")[:TITLE_MAX]


def chat_turn(
    session: Session,
    *,
    user_id: str,
    conversation_id: int | None,
    message: str,
    settings: Settings,
) -> ChatResponse:
    """One turn: store the user's message, ask the assistant, store its reply, return it.

    The user's message is committed before the assistant runs and survives its failure; no
    transaction stays open while the assistant works; the reply is linked to the message it
    answers, so concurrent turns of one conversation never mix up their replies.
    """
    store = chat_store_for(session)
    turn = store.open_turn(
        session,
        user_id=user_id,
        conversation_id=conversation_id,
        content=message,
        title=title_from_message(message),
        window=settings.chat_history_window,
    )
    assistant = create_assistant(settings.chat_assistant, session=session, user_id=user_id)
    try:
        reply = assistant.reply(turn.history, message, user_id=user_id)
    except AppError:
        raise
    except Exception as error:
        session.rollback()
        # Log the failure's type only: its message could quote the user's words.
        logger.error("assistant failed: %s", type(error).__name__)
        count(ASSISTANT_ERRORS)
        raise AssistantFailed() from error
    store.finish_turn(
        session,
        user_id=user_id,
        conversation_id=turn.conversation_id,
        reply_to_id=turn.user_message_id,
        content=reply.text,
        tool_calls=reply.tool_calls,
    )
    return ChatResponse.model_validate(
        {
            "conversation_id": turn.conversation_id,
            "response": reply.text,
            "tool_calls": reply.tool_calls,
        }
    )


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
        next_cursor = encode_cursor(timestamp_key(last.updated_at), _id(last.id))
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
    turn_key: Any = func.coalesce(col(Message.reply_to_id), col(Message.id))
    query = select(Message, turn_key.label("turn")).where(
        col(Message.conversation_id) == conversation_id
    )
    if cursor is not None:
        turn, message_id = decode_cursor(cursor)
        query = query.where(tuple_(turn_key, col(Message.id)) < tuple_(turn, message_id))
    query = query.order_by(turn_key.desc(), col(Message.id).desc()).limit(limit + 1)
    rows = session.execute(query).all()
    page, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor(page[-1].turn, _id(page[-1].Message.id)) if more else None
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


def _id(value: int | None) -> int:
    if value is None:  # only an unsaved row has no id
        raise ValueError("row has no id")
    return value
