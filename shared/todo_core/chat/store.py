"""Storage of a chat turn, in as few round trips as the database allows.

``open_turn`` checks that the conversation is the user's (or creates it), reads the history window
and stores the user's message; ``finish_turn`` stores the reply, linked to the question it
answers, and touches the conversation. On PostgreSQL each is **one statement** (data-modifying
CTEs), so a turn without tool calls costs two round trips whatever the history length, and both
are atomic without holding a transaction open. :class:`PortableChatStore` does the same steps as
separate statements in a transaction, for SQLite (the local default), which has no
data-modifying CTEs; the tests run both against PostgreSQL and compare them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.engine import Row
from sqlmodel import Session, col

from todo_core.chat.models import Conversation, Message, Role
from todo_core.db import JSONDocument, utc_now
from todo_core.errors import NotFound

CONVERSATION_NOT_FOUND = "Conversation not found"


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    """A stored message as the assistant sees it."""

    id: int
    role: Role
    content: str
    tool_calls: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class OpenedTurn:
    conversation_id: int
    user_message_id: int
    history: list[HistoryMessage]
    """The last messages before this turn, oldest first (in turn order)."""


class ChatStore(Protocol):
    def open_turn(
        self,
        session: Session,
        *,
        user_id: str,
        conversation_id: int | None,
        content: str,
        title: str,
        window: int,
    ) -> OpenedTurn: ...

    def finish_turn(
        self,
        session: Session,
        *,
        user_id: str,
        conversation_id: int,
        reply_to_id: int,
        content: str,
        tool_calls: list[dict[str, Any]],
    ) -> int: ...


def _history(rows: list[Row[Any]]) -> list[HistoryMessage]:
    # Rows arrive newest first; the assistant reads oldest first.
    return [
        HistoryMessage(id=r.id, role=Role(r.role), content=r.content, tool_calls=r.tool_calls)
        for r in reversed(rows)
    ]


# Each statement names its parameters once, typed, in an ``input`` CTE: a parameter used in two
# places would otherwise get two conflicting inferred types.
_PG_NEW_CONVERSATION = text("""
WITH input AS (
    SELECT CAST(:user_id AS varchar) AS user_id, CAST(:title AS varchar) AS title,
           CAST(:content AS text) AS content, CAST(:now AS timestamptz) AS now
),
created AS (
    INSERT INTO conversation (user_id, title, created_at, updated_at)
    SELECT user_id, title, now, now FROM input
    RETURNING id
)
INSERT INTO message (conversation_id, user_id, role, content, created_at)
SELECT created.id, input.user_id, 'user', input.content, input.now FROM created, input
RETURNING id, conversation_id
""")

_PG_CONTINUE_CONVERSATION = text("""
WITH input AS (
    SELECT CAST(:conversation_id AS bigint) AS conversation_id,
           CAST(:user_id AS varchar) AS user_id, CAST(:content AS text) AS content,
           CAST(:now AS timestamptz) AS now
),
owned AS (
    SELECT c.id FROM conversation AS c, input
    WHERE c.id = input.conversation_id AND c.user_id = input.user_id
),
touched AS (
    UPDATE conversation SET updated_at = input.now FROM input, owned
    WHERE conversation.id = owned.id
),
history AS (
    SELECT m.id, m.role, m.content, m.tool_calls
    FROM message AS m
    WHERE m.conversation_id = CAST(:conversation_id AS bigint) AND EXISTS (SELECT FROM owned)
    ORDER BY coalesce(m.reply_to_id, m.id) DESC, m.id DESC  -- the turn-order index, backwards
    LIMIT CAST(:window AS integer)
),
stored AS (
    INSERT INTO message (conversation_id, user_id, role, content, created_at)
    SELECT owned.id, input.user_id, 'user', input.content, input.now FROM owned, input
    RETURNING id
)
SELECT TRUE AS is_new, stored.id, NULL AS role, NULL AS content, NULL::jsonb AS tool_calls
FROM stored
UNION ALL
SELECT FALSE, history.id, history.role, history.content, history.tool_calls FROM history
""")

_PG_FINISH_TURN = text("""
WITH input AS (
    SELECT CAST(:conversation_id AS bigint) AS conversation_id,
           CAST(:user_id AS varchar) AS user_id, CAST(:content AS text) AS content,
           CAST(:tool_calls AS jsonb) AS tool_calls, CAST(:reply_to_id AS bigint) AS reply_to_id,
           CAST(:now AS timestamptz) AS now
),
stored AS (
    INSERT INTO message
        (conversation_id, user_id, role, content, tool_calls, reply_to_id, created_at)
    SELECT c.id, input.user_id, 'assistant', input.content, input.tool_calls,
           input.reply_to_id, input.now
    FROM conversation AS c, input
    WHERE c.id = input.conversation_id AND c.user_id = input.user_id
    RETURNING id
),
touched AS (
    UPDATE conversation SET updated_at = input.now FROM input
    WHERE conversation.id = input.conversation_id AND conversation.user_id = input.user_id
)
SELECT id FROM stored
""").bindparams(bindparam("tool_calls", type_=JSONDocument))


class PostgresChatStore:
    """One statement per step: two round trips for a turn that calls no tools."""

    def open_turn(
        self,
        session: Session,
        *,
        user_id: str,
        conversation_id: int | None,
        content: str,
        title: str,
        window: int,
    ) -> OpenedTurn:
        now = utc_now()
        if conversation_id is None:
            row = session.execute(
                _PG_NEW_CONVERSATION,
                {"user_id": user_id, "title": title, "content": content, "now": now},
            ).one()
            session.commit()
            return OpenedTurn(
                conversation_id=row.conversation_id, user_message_id=row.id, history=[]
            )
        rows = session.execute(
            _PG_CONTINUE_CONVERSATION,
            {
                "conversation_id": conversation_id,
                "user_id": user_id,
                "content": content,
                "now": now,
                "window": window,
            },
        ).all()
        session.commit()
        stored = [row for row in rows if row.is_new]
        if not stored:
            raise NotFound(CONVERSATION_NOT_FOUND)
        history = [row for row in rows if not row.is_new]
        return OpenedTurn(
            conversation_id=conversation_id,
            user_message_id=stored[0].id,
            history=_history(history),
        )

    def finish_turn(
        self,
        session: Session,
        *,
        user_id: str,
        conversation_id: int,
        reply_to_id: int,
        content: str,
        tool_calls: list[dict[str, Any]],
    ) -> int:
        reply_id = session.execute(
            _PG_FINISH_TURN,
            {
                "conversation_id": conversation_id,
                "user_id": user_id,
                "content": content,
                "tool_calls": tool_calls,
                "reply_to_id": reply_to_id,
                "now": utc_now(),
            },
        ).scalar_one_or_none()
        session.commit()
        if reply_id is None:
            # Deleted while the assistant was working: the question went with it.
            raise NotFound(CONVERSATION_NOT_FOUND)
        return int(reply_id)


def _turn_key() -> Any:
    return func.coalesce(col(Message.reply_to_id), col(Message.id))


class PortableChatStore:
    """The same steps as separate statements in one transaction (SQLite, or any database)."""

    def open_turn(
        self,
        session: Session,
        *,
        user_id: str,
        conversation_id: int | None,
        content: str,
        title: str,
        window: int,
    ) -> OpenedTurn:
        now = utc_now()
        history_rows: list[Row[Any]] = []
        if conversation_id is None:
            conversation_id = session.execute(
                insert(Conversation)
                .values(user_id=user_id, title=title, created_at=now, updated_at=now)
                .returning(col(Conversation.id))
            ).scalar_one()
        else:
            touched = session.execute(
                update(Conversation)
                .where(
                    col(Conversation.id) == conversation_id, col(Conversation.user_id) == user_id
                )
                .values(updated_at=now)
                .returning(col(Conversation.id))
            ).scalar_one_or_none()
            if touched is None:
                session.rollback()
                raise NotFound(CONVERSATION_NOT_FOUND)
            history_rows = list(
                session.execute(
                    select(
                        col(Message.id),
                        col(Message.role),
                        col(Message.content),
                        col(Message.tool_calls),
                    )
                    .where(col(Message.conversation_id) == conversation_id)
                    .order_by(_turn_key().desc(), col(Message.id).desc())
                    .limit(window)
                ).all()
            )
        message_id = session.execute(
            insert(Message)
            .values(
                conversation_id=conversation_id,
                user_id=user_id,
                role=Role.user.value,
                content=content,
                created_at=now,
            )
            .returning(col(Message.id))
        ).scalar_one()
        session.commit()
        return OpenedTurn(
            conversation_id=conversation_id,
            user_message_id=message_id,
            history=_history(history_rows),
        )

    def finish_turn(
        self,
        session: Session,
        *,
        user_id: str,
        conversation_id: int,
        reply_to_id: int,
        content: str,
        tool_calls: list[dict[str, Any]],
    ) -> int:
        now = utc_now()
        touched = session.execute(
            update(Conversation)
            .where(col(Conversation.id) == conversation_id, col(Conversation.user_id) == user_id)
            .values(updated_at=now)
            .returning(col(Conversation.id))
        ).scalar_one_or_none()
        if touched is None:
            session.rollback()
            raise NotFound(CONVERSATION_NOT_FOUND)
        reply_id = session.execute(
            insert(Message)
            .values(
                conversation_id=conversation_id,
                user_id=user_id,
                role=Role.assistant.value,
                content=content,
                tool_calls=tool_calls,
                reply_to_id=reply_to_id,
                created_at=now,
            )
            .returning(col(Message.id))
        ).scalar_one()
        session.commit()
        return int(reply_id)


def chat_store_for(session: Session) -> ChatStore:
    """The fastest store the session's database supports."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        return PostgresChatStore()
    return PortableChatStore()
