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
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import JSON, bindparam, exc, func, insert, select, text, update
from sqlalchemy.engine import Row
from sqlmodel import Session, col

from todo_core.chat.models import CONVERSATION_NOT_FOUND, Conversation, Message
from todo_core.chat.types import HistoryMessage, Role
from todo_core.db import JSONDocument, utc_now
from todo_core.errors import NotFound
from todo_core.idempotency import (
    PG_CLAIM_INPUT,
    PG_PURGE_CTE,
    IdempotencyKey,
    KeyClaim,
    KeyNotClaimed,
    insert_key,
    pg_claim_cte,
    purge_and_read_key,
)


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
        claim: KeyClaim | None = None,
    ) -> OpenedTurn:
        """Store the user's message and read the window before it. With ``claim``, the
        Idempotency-Key is claimed in the same step, or KeyNotClaimed is raised and nothing is
        stored (another request holds the key, or, for a ``conversation_id``, it is not the
        user's)."""
        ...

    def finish_turn(
        self,
        session: Session,
        *,
        user_id: str,
        conversation_id: int,
        reply_to_id: int,
        content: str,
        tool_calls: list[dict[str, Any]],
        claim: KeyClaim | None = None,
        response: dict[str, Any] | None = None,
    ) -> int:
        """Store the reply; with ``claim``, record ``response`` on the key in the same step, or
        raise KeyNotClaimed if the question already has a reply (another attempt answered)."""
        ...

    def take_over(
        self,
        session: Session,
        *,
        user_id: str,
        key: str,
        now: datetime,
        lease_until: datetime,
        window: int,
    ) -> OpenedTurn | None:
        """Take an unanswered key whose lease has expired: its stored question and the window
        before it, or None if another attempt holds or answered it. NotFound if the question
        was deleted."""
        ...


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
),
answered AS (  -- the turn's Idempotency-Key, if it has one, gets the response
    UPDATE idempotency_key AS k
    SET status_code = 200, response = CAST(:response AS json), locked_until = NULL
    FROM input, stored
    WHERE k.user_id = input.user_id AND k.key = CAST(:key AS varchar)
      AND k.user_message_id = input.reply_to_id
)
SELECT id FROM stored
""").bindparams(bindparam("tool_calls", type_=JSONDocument), bindparam("response", type_=JSON))

# Keyed variants: the message's (and a new conversation's) ids are drawn first, so the key's
# claim can record them and the inserts read from the claim: no claim, nothing stored.
_PG_CLAIM_NEW_CONVERSATION = pg_claim_cte(
    source="input, new_ids",
    conversation_id="new_ids.conversation_id",
    user_message_id="new_ids.message_id",
    locked_until="input.locked_until",
)
_PG_NEW_CONVERSATION_KEYED = text(f"""
WITH input AS (
    SELECT {PG_CLAIM_INPUT},
           CAST(:title AS varchar) AS title, CAST(:content AS text) AS content
),
new_ids AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('conversation', 'id')) AS conversation_id,
           nextval(pg_get_serial_sequence('message', 'id')) AS message_id
),
{_PG_CLAIM_NEW_CONVERSATION},
created AS (
    INSERT INTO conversation (id, user_id, title, created_at, updated_at)
    SELECT claimed.conversation_id, input.user_id, input.title, input.now, input.now
    FROM claimed, input
    RETURNING id
),
stored AS (
    INSERT INTO message (id, conversation_id, user_id, role, content, created_at)
    SELECT claimed.user_message_id, created.id, input.user_id, 'user', input.content, input.now
    FROM claimed, created, input
    RETURNING id, conversation_id
),
{PG_PURGE_CTE}
SELECT id, conversation_id FROM stored
""")  # noqa: S608  (constant fragments; values are bound parameters)

_PG_CLAIM_CONTINUE = pg_claim_cte(
    source="input, owned, new_ids",
    conversation_id="owned.id",
    user_message_id="new_ids.message_id",
    locked_until="input.locked_until",
)
_PG_CONTINUE_CONVERSATION_KEYED = text(f"""
WITH input AS (
    SELECT {PG_CLAIM_INPUT},
           CAST(:conversation_id AS bigint) AS conversation_id, CAST(:content AS text) AS content
),
owned AS (
    SELECT c.id FROM conversation AS c, input
    WHERE c.id = input.conversation_id AND c.user_id = input.user_id
),
new_ids AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('message', 'id')) AS message_id
),
{_PG_CLAIM_CONTINUE},
touched AS (
    UPDATE conversation SET updated_at = input.now FROM input, claimed
    WHERE conversation.id = claimed.conversation_id
),
history AS (
    SELECT m.id, m.role, m.content, m.tool_calls
    FROM message AS m
    WHERE m.conversation_id = CAST(:conversation_id AS bigint) AND EXISTS (SELECT FROM claimed)
    ORDER BY coalesce(m.reply_to_id, m.id) DESC, m.id DESC  -- the turn-order index, backwards
    LIMIT CAST(:window AS integer)
),
stored AS (
    INSERT INTO message (id, conversation_id, user_id, role, content, created_at)
    SELECT claimed.user_message_id, claimed.conversation_id, input.user_id, 'user',
           input.content, input.now
    FROM claimed, input
    RETURNING id
),
{PG_PURGE_CTE}
SELECT TRUE AS is_new, stored.id, NULL AS role, NULL AS content, NULL::jsonb AS tool_calls
FROM stored
UNION ALL
SELECT FALSE, history.id, history.role, history.content, history.tool_calls FROM history
""")  # noqa: S608

# A retry of an unanswered turn whose lease expired: take the lease (compare-and-set on its
# expiry), find the stored question, read the window before it; one statement.
_PG_TAKE_OVER = text("""
WITH input AS (
    SELECT CAST(:user_id AS varchar) AS user_id, CAST(:key AS varchar) AS key,
           CAST(:now AS timestamptz) AS now, CAST(:lease_until AS timestamptz) AS lease_until
),
taken AS (
    UPDATE idempotency_key AS k SET locked_until = input.lease_until FROM input
    WHERE k.user_id = input.user_id AND k.key = input.key AND k.expires_at > input.now
      AND k.response IS NULL AND k.locked_until <= input.now
    RETURNING k.user_message_id
),
question AS (
    SELECT m.id, m.conversation_id FROM message AS m, taken, input
    WHERE m.id = taken.user_message_id AND m.user_id = input.user_id AND m.role = 'user'
),
history AS (
    SELECT m.id, m.role, m.content, m.tool_calls
    FROM message AS m, question AS q
    WHERE m.conversation_id = q.conversation_id AND coalesce(m.reply_to_id, m.id) < q.id
    ORDER BY coalesce(m.reply_to_id, m.id) DESC, m.id DESC
    LIMIT CAST(:window AS integer)
)
SELECT 'taken' AS kind, NULL::bigint AS id, NULL::bigint AS conversation_id, NULL AS role,
       NULL AS content, NULL::jsonb AS tool_calls
FROM taken
UNION ALL
SELECT 'question', q.id, q.conversation_id, NULL, NULL, NULL FROM question AS q
UNION ALL
SELECT 'history', h.id, NULL, h.role, h.content, h.tool_calls FROM history AS h
""")


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
        claim: KeyClaim | None = None,
    ) -> OpenedTurn:
        now = claim.now if claim is not None else utc_now()
        keyed: dict[str, Any] = claim.sql_parameters() if claim is not None else {}
        if conversation_id is None:
            statement = _PG_NEW_CONVERSATION if claim is None else _PG_NEW_CONVERSATION_KEYED
            row = session.execute(
                statement,
                {"user_id": user_id, "title": title, "content": content, "now": now, **keyed},
            ).one_or_none()
            session.commit()
            if row is None:
                raise KeyNotClaimed()
            return OpenedTurn(
                conversation_id=row.conversation_id, user_message_id=row.id, history=[]
            )
        rows = session.execute(
            _PG_CONTINUE_CONVERSATION if claim is None else _PG_CONTINUE_CONVERSATION_KEYED,
            {
                "conversation_id": conversation_id,
                "user_id": user_id,
                "content": content,
                "now": now,
                "window": window,
                **keyed,
            },
        ).all()
        session.commit()
        stored = [row for row in rows if row.is_new]
        if not stored:
            if claim is not None:
                raise KeyNotClaimed()
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
        claim: KeyClaim | None = None,
        response: dict[str, Any] | None = None,
    ) -> int:
        try:
            reply_id = session.execute(
                _PG_FINISH_TURN,
                {
                    "conversation_id": conversation_id,
                    "user_id": user_id,
                    "content": content,
                    "tool_calls": tool_calls,
                    "reply_to_id": reply_to_id,
                    "now": utc_now(),
                    "key": claim.key if claim is not None else None,
                    "response": response,
                },
            ).scalar_one_or_none()
        except exc.IntegrityError:
            session.rollback()
            if claim is None:
                raise
            raise KeyNotClaimed() from None  # another attempt stored the reply first
        session.commit()
        if reply_id is None:
            # Deleted while the assistant was working: the question went with it.
            raise NotFound(CONVERSATION_NOT_FOUND)
        return int(reply_id)

    def take_over(
        self,
        session: Session,
        *,
        user_id: str,
        key: str,
        now: datetime,
        lease_until: datetime,
        window: int,
    ) -> OpenedTurn | None:
        rows = session.execute(
            _PG_TAKE_OVER,
            {
                "user_id": user_id,
                "key": key,
                "now": now,
                "lease_until": lease_until,
                "window": window,
            },
        ).all()
        session.commit()
        if not any(row.kind == "taken" for row in rows):
            return None
        question = [row for row in rows if row.kind == "question"]
        if not question:
            raise NotFound(CONVERSATION_NOT_FOUND)
        return OpenedTurn(
            conversation_id=question[0].conversation_id,
            user_message_id=question[0].id,
            history=_history([row for row in rows if row.kind == "history"]),
        )


def _touch_conversation(
    session: Session, *, user_id: str, conversation_id: int, now: datetime
) -> None:
    """Mark the user's conversation active; NotFound (and nothing kept) if it is not theirs."""
    touched = session.execute(
        update(Conversation)
        .where(col(Conversation.id) == conversation_id, col(Conversation.user_id) == user_id)
        .values(updated_at=now)
        .returning(col(Conversation.id))
    ).scalar_one_or_none()
    if touched is None:
        session.rollback()
        raise NotFound(CONVERSATION_NOT_FOUND)


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
        claim: KeyClaim | None = None,
    ) -> OpenedTurn:
        now = claim.now if claim is not None else utc_now()
        if claim is not None and purge_and_read_key(session, claim) is not None:
            session.commit()
            raise KeyNotClaimed()
        history_rows: list[Row[Any]] = []
        if conversation_id is None:
            conversation_id = session.execute(
                insert(Conversation)
                .values(user_id=user_id, title=title, created_at=now, updated_at=now)
                .returning(col(Conversation.id))
            ).scalar_one()
        else:
            _touch_conversation(session, user_id=user_id, conversation_id=conversation_id, now=now)
            history_rows = _window(session, conversation_id=conversation_id, window=window)
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
        try:
            if claim is not None:
                insert_key(
                    session,
                    claim,
                    conversation_id=conversation_id,
                    user_message_id=message_id,
                    locked_until=claim.locked_until,
                )
            session.commit()
        except exc.IntegrityError:
            session.rollback()  # the message (and a new conversation) go with it
            raise KeyNotClaimed() from None
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
        claim: KeyClaim | None = None,
        response: dict[str, Any] | None = None,
    ) -> int:
        now = utc_now()
        _touch_conversation(session, user_id=user_id, conversation_id=conversation_id, now=now)
        try:
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
        except exc.IntegrityError:
            session.rollback()
            if claim is None:
                raise
            raise KeyNotClaimed() from None  # another attempt stored the reply first
        if claim is not None:
            session.execute(
                update(IdempotencyKey)
                .where(
                    col(IdempotencyKey.user_id) == user_id,
                    col(IdempotencyKey.key) == claim.key,
                    col(IdempotencyKey.user_message_id) == reply_to_id,
                )
                .values(status_code=200, response=response, locked_until=None)
            )
        session.commit()
        return int(reply_id)

    def take_over(
        self,
        session: Session,
        *,
        user_id: str,
        key: str,
        now: datetime,
        lease_until: datetime,
        window: int,
    ) -> OpenedTurn | None:
        taken = session.execute(
            update(IdempotencyKey)
            .where(
                col(IdempotencyKey.user_id) == user_id,
                col(IdempotencyKey.key) == key,
                col(IdempotencyKey.expires_at) > now,
                col(IdempotencyKey.response).is_(None),
                col(IdempotencyKey.locked_until) <= now,
            )
            .values(locked_until=lease_until)
            .returning(col(IdempotencyKey.user_message_id))
        ).scalar_one_or_none()
        if taken is None:
            session.commit()
            return None
        question = session.execute(
            select(col(Message.id), col(Message.conversation_id)).where(
                col(Message.id) == taken,
                col(Message.user_id) == user_id,
                col(Message.role) == Role.user.value,
            )
        ).one_or_none()
        if question is None:
            session.commit()
            raise NotFound(CONVERSATION_NOT_FOUND)
        history_rows = _window(
            session, conversation_id=question.conversation_id, window=window, before=question.id
        )
        session.commit()
        return OpenedTurn(
            conversation_id=question.conversation_id,
            user_message_id=question.id,
            history=_history(history_rows),
        )


def _window(
    session: Session, *, conversation_id: int, window: int, before: int | None = None
) -> list[Row[Any]]:
    """The last ``window`` messages (of the turns before ``before``), newest first."""
    query = select(
        col(Message.id), col(Message.role), col(Message.content), col(Message.tool_calls)
    ).where(col(Message.conversation_id) == conversation_id)
    if before is not None:
        query = query.where(_turn_key() < before)
    query = query.order_by(_turn_key().desc(), col(Message.id).desc()).limit(window)
    return list(session.execute(query).all())


def chat_store_for(session: Session) -> ChatStore:
    """The fastest store the session's database supports."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        return PostgresChatStore()
    return PortableChatStore()
