"""The conversation history a chat UI pages through: a user's conversations, one
conversation's messages, and deleting a conversation. Nothing here needs the assistant, so the
history functions load none of it at cold start.

As in :mod:`todo_core.tasks.service`, the statements are SQLAlchemy Core, built once when the
module is imported with every value a named bound parameter (none named after a column), so each
is compiled once per container (at init in Lambda: :mod:`todo_core.warmup`); rows go straight
into the public models, with no ORM object in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import BigInteger, Select, bindparam, delete, literal_column, select, tuple_
from sqlalchemy.sql.elements import ColumnElement
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
from todo_core.db import UTCDateTime
from todo_core.errors import NotFound
from todo_core.pagination import decode_cursor, encode_cursor, from_timestamp_key, timestamp_key

_CONVERSATION_FIELDS = tuple(ConversationPublic.model_fields)
"""The columns a conversation is read with, in ConversationPublic's order (its JSON's)."""
_MESSAGE_FIELDS = tuple(MessagePublic.model_fields)
"""The columns a message is read with, in MessagePublic's order (its JSON's)."""

_TURN: ColumnElement[int] = literal_column(TURN_KEY_SQL, BigInteger)
_THE_CONVERSATION = (col(Conversation.id) == bindparam("conversation")) & (
    col(Conversation.user_id) == bindparam("owner")
)


def _conversations_statement(*, after_cursor: bool) -> Select[Any]:
    query = select(*(col(getattr(Conversation, name)) for name in _CONVERSATION_FIELDS)).where(
        col(Conversation.user_id) == bindparam("owner")
    )
    if after_cursor:
        query = query.where(
            tuple_(col(Conversation.updated_at), col(Conversation.id))
            < tuple_(
                bindparam("after_updated_at", type_=UTCDateTime),
                bindparam("after_id", type_=BigInteger),
            )
        )
    newest_first = (col(Conversation.updated_at).desc(), col(Conversation.id).desc())
    return query.order_by(*newest_first).limit(bindparam("rows"))


def _messages_statement(*, after_cursor: bool) -> Select[Any]:
    # The turn first, then MessagePublic's fields: the page's cursor is (turn, id).
    query = select(
        _TURN.label("turn"), *(col(getattr(Message, name)) for name in _MESSAGE_FIELDS)
    ).where(
        col(Message.conversation_id) == bindparam("conversation"),
        col(Message.user_id) == bindparam("owner"),
    )
    if after_cursor:
        query = query.where(
            tuple_(_TURN, col(Message.id))
            < tuple_(
                bindparam("after_turn", type_=BigInteger), bindparam("after_id", type_=BigInteger)
            )
        )
    return query.order_by(_TURN.desc(), col(Message.id).desc()).limit(bindparam("rows"))


# By whether the request carries a cursor.
_LIST_CONVERSATIONS = {
    after: _conversations_statement(after_cursor=after) for after in (False, True)
}
_LIST_MESSAGES = {after: _messages_statement(after_cursor=after) for after in (False, True)}
_OWNED = select(col(Conversation.id)).where(_THE_CONVERSATION)
_DELETE = delete(Conversation).where(_THE_CONVERSATION).returning(col(Conversation.id))

_CONVERSATIONS = TypeAdapter(list[ConversationPublic])
_MESSAGES = TypeAdapter(list[MessagePublic])
_MESSAGE = TypeAdapter(MessagePublic)
_PAGE = TypeAdapter(MessagePage)

MESSAGES_PAGE_MAX_BYTES = 1_000_000
"""A messages page stops before its JSON passes this many bytes (its ``next_cursor``
then leads on from the last one it holds); a message larger on its own comes alone. Lambda's
response payload is at most 6 MB, and the runtime's JSON envelope may double a body (each ``"``
and ``\\`` escaped again): 200 stored replies of listings used to pass it, and that
conversation's page failed at any ``limit`` from then on."""


def list_conversations(
    session: Session, *, user_id: str, limit: int, cursor: str | None = None
) -> ConversationPage:
    """The user's conversations, most recently active first, one page at a time."""
    parameters: dict[str, Any] = {"owner": user_id, "rows": limit + 1}
    if cursor is not None:
        updated_key, conversation_id = decode_cursor(cursor)
        parameters["after_updated_at"] = from_timestamp_key(updated_key)
        parameters["after_id"] = conversation_id
    rows = session.connection().execute(_LIST_CONVERSATIONS[cursor is not None], parameters).all()
    # One validation call for the whole page: pydantic's loop, not Python's.
    page = _CONVERSATIONS.validate_python(
        [dict(zip(_CONVERSATION_FIELDS, row, strict=True)) for row in rows[:limit]]
    )
    next_cursor = None
    if len(rows) > limit and page:
        last = page[-1]
        next_cursor = encode_cursor(timestamp_key(last.updated_at), last.id)
    return ConversationPage(items=page, next_cursor=next_cursor)


def list_messages(
    session: Session, *, user_id: str, conversation_id: int, limit: int, cursor: str | None = None
) -> bytes:
    """A page of the conversation's messages in turn order, oldest first, as the JSON of a
    :class:`MessagePage`; the first page holds the most recent ones and ``next_cursor`` leads to
    older ones. Serialised here, once: the page's size decides how many messages it holds
    (:data:`MESSAGES_PAGE_MAX_BYTES`).

    One statement reads the page (a message carries its owner's id, so it is scoped to the
    user); only an empty page asks whether the conversation is there at all. Two statements,
    the ownership check first, could see the conversation, then an empty page as a concurrent
    delete committed in between: a 200 for a conversation that no longer exists."""
    connection = session.connection()
    parameters: dict[str, Any] = {
        "conversation": conversation_id,
        "owner": user_id,
        "rows": limit + 1,
    }
    if cursor is not None:
        parameters["after_turn"], parameters["after_id"] = decode_cursor(cursor)
    rows: Sequence[Any] = connection.execute(_LIST_MESSAGES[cursor is not None], parameters).all()
    if not rows:
        owned = connection.execute(
            _OWNED, {"conversation": conversation_id, "owner": user_id}
        ).one_or_none()
        if owned is None:
            raise NotFound(CONVERSATION_NOT_FOUND)
    page = rows[:limit]  # newest first
    items = _MESSAGES.validate_python(
        [dict(zip(_MESSAGE_FIELDS, row[1:], strict=True)) for row in page]
    )
    body = _page_json(page, items, len(items), more=len(rows) > limit)
    if len(body) <= MESSAGES_PAGE_MAX_BYTES:  # the usual page: serialised once
        return body
    kept = _within_page_budget(items)
    return _page_json(page, items, kept, more=kept < len(items) or len(rows) > limit)


def _page_json(page: Sequence[Any], items: list[MessagePublic], kept: int, *, more: bool) -> bytes:
    """The page of the first ``kept`` of ``items`` (newest first, read from the rows ``page``)
    as JSON, oldest first; ``more``: older messages follow it."""
    last = page[kept - 1] if kept else None
    next_cursor = encode_cursor(last.turn, last.id) if more and last is not None else None
    return _PAGE.dump_json(
        MessagePage.model_construct(
            items=items[kept - 1 :: -1] if kept else [], next_cursor=next_cursor
        )
    )


_ENVELOPE_BYTES = len(
    _PAGE.dump_json(MessagePage.model_construct(items=[], next_cursor=f"{'9' * 18}.{'9' * 18}"))
)
"""The page's JSON around its messages, with the longest cursor."""


def _within_page_budget(items: Sequence[MessagePublic]) -> int:
    """How many of ``items`` (newest first) fit in :data:`MESSAGES_PAGE_MAX_BYTES` with the
    page around them (its brackets, the commas between them, the cursor); at least one, so that
    paging always moves on."""
    used = _ENVELOPE_BYTES - 1  # the first message has no comma before it
    for count, item in enumerate(items):
        used += len(_MESSAGE.dump_json(item)) + 1
        if used > MESSAGES_PAGE_MAX_BYTES and count > 0:
            return count
    return len(items)


def delete_conversation(session: Session, *, user_id: str, conversation_id: int) -> None:
    """Delete the conversation and, by cascade, all its messages."""
    deleted = (
        session.connection()
        .execute(_DELETE, {"conversation": conversation_id, "owner": user_id})
        .one_or_none()
    )
    session.commit()
    if deleted is None:
        raise NotFound(CONVERSATION_NOT_FOUND)
