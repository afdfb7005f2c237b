"""Storage of a chat turn: one SQL statement (one round trip) per step, whatever the history.

:func:`open_turn` checks that the conversation is the user's (or creates it), claims the turn's
Idempotency-Key if it has one, stores the user's message and reads the history window before
it; :func:`finish_turn` stores the reply, linked to the question it answers, and touches the
conversation; :func:`take_over` lets a retry answer a question whose first attempt died. Each is
one statement made of data-modifying CTEs, atomic without holding a transaction open.

The history window is written once (:data:`_HISTORY`): the last ``window`` messages of the
``turn`` CTE's conversation before its question, in turn order (see
:data:`~todo_core.chat.models.TURN_KEY_SQL`), read backwards through the turn-order index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import errors as pg_errors
from sqlalchemy import JSON, BigInteger, Text, bindparam, column, exc, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Row
from sqlmodel import Session

from todo_core.chat.models import CONVERSATION_NOT_FOUND, TURN_KEY_SQL
from todo_core.chat.rate import COUNTED_ROW, RATE_CTES, RATE_INPUT, UNCOUNT
from todo_core.chat.tool_steps import RecordedStep, recorded_step_from
from todo_core.chat.types import HistoryMessage, Role
from todo_core.db import utc_now
from todo_core.errors import ChatRateLimited, NotFound
from todo_core.idempotency import (
    PG_CLAIM_INPUT,
    PG_PURGE_CTE,
    KeyClaim,
    KeyHeld,
    claim_parameters,
    pg_claim_cte,
)


class TurnAlreadyAnswered(Exception):
    """Another attempt at this turn (same Idempotency-Key) stored the reply first."""


@dataclass(frozen=True, slots=True)
class OpenedTurn:
    conversation_id: int
    user_message_id: int
    history: list[HistoryMessage]
    """The last messages before this turn, oldest first (in turn order)."""
    recorded_steps: list[RecordedStep] = field(default_factory=list)
    """The task writes an earlier attempt at this turn made (a taken-over turn), in order."""


# The window before the question of the statement's ``turn`` CTE (at most one row: its
# conversation_id, question_id). Scalar subqueries, not a join, so that the planner knows the
# conversation when it plans the scan: a backward scan of the turn-order index, at any length.
_HISTORY = f"""history AS (
    SELECT id, role, content, tool_calls FROM message
    WHERE conversation_id = (SELECT conversation_id FROM turn)
      AND {TURN_KEY_SQL} < (SELECT question_id FROM turn)
    ORDER BY {TURN_KEY_SQL} DESC, id DESC
    LIMIT CAST(:window AS integer)
)"""  # noqa: S608  (a constant expression)

# Every statement that opens a turn answers with these rows, plus its own marker rows, all of
# these columns. Declared (positionally, typed), the statement's result metadata is built once per
# container, like its compiled SQL, instead of from the cursor's description at every turn.
_TURN_ROW = (
    column("kind", Text),
    column("id", BigInteger),
    column("conversation_id", BigInteger),
    column("role", Text),
    column("content", Text),
    column("tool_calls", JSONB),
)
_TURN_AND_HISTORY = """
SELECT 'turn' AS kind, turn.question_id AS id, turn.conversation_id, NULL AS role,
       NULL AS content, NULL::jsonb AS tool_calls
FROM turn
UNION ALL
SELECT 'history', history.id, NULL, history.role, history.content, history.tool_calls
FROM history"""

# Each statement names its parameters once, typed, in an ``input`` CTE: a parameter used in two
# places would otherwise get two conflicting inferred types. Ids are drawn from the sequences
# first, so that the key's claim can record them and the inserts can read from the claim: a key
# held by another attempt stores nothing. Without a key (NULL) the claim is skipped.
_OPEN_TURN = text(f"""
WITH input AS (
    SELECT {PG_CLAIM_INPUT},
           CAST(:conversation_id AS bigint) AS conversation_id,
           CAST(:title AS varchar) AS title, CAST(:content AS text) AS content,
           {RATE_INPUT}
),
candidate AS MATERIALIZED (
    SELECT ids.conversation_id, nextval(pg_get_serial_sequence('message', 'id')) AS question_id
    FROM (
        SELECT c.id AS conversation_id FROM conversation AS c, input
        WHERE c.id = input.conversation_id AND c.user_id = input.user_id
        UNION ALL
        SELECT nextval(pg_get_serial_sequence('conversation', 'id')) FROM input
        WHERE input.conversation_id IS NULL
    ) AS ids
),
{RATE_CTES},
{
    pg_claim_cte(
        source="input, candidate",
        conversation_id="candidate.conversation_id",
        user_message_id="candidate.question_id",
        locked_until="input.locked_until",
        where="input.key IS NOT NULL AND NOT EXISTS (SELECT FROM limited)",
    )
},
turn AS MATERIALIZED (
    SELECT candidate.* FROM candidate, input
    WHERE (input.key IS NULL OR EXISTS (SELECT FROM claimed))
      AND NOT EXISTS (SELECT FROM limited)
),
created AS (
    INSERT INTO conversation (id, user_id, title, created_at, updated_at)
    SELECT turn.conversation_id, input.user_id, input.title, input.now, input.now
    FROM turn, input WHERE input.conversation_id IS NULL
),
touched AS (  -- never back: a statement that read the clock earlier may commit later
    UPDATE conversation SET updated_at = greatest(conversation.updated_at, input.now)
    FROM turn, input
    WHERE conversation.id = turn.conversation_id AND input.conversation_id IS NOT NULL
),
stored AS (
    INSERT INTO message (id, conversation_id, user_id, role, content, created_at)
    SELECT turn.question_id, turn.conversation_id, input.user_id, 'user', input.content, input.now
    FROM turn, input
),
{_HISTORY},
{PG_PURGE_CTE}
{_TURN_AND_HISTORY}
UNION ALL
SELECT 'conversation', NULL, candidate.conversation_id, NULL, NULL, NULL FROM candidate
UNION ALL
SELECT 'limited', CAST(limited.retry_after_seconds AS bigint), NULL, NULL, NULL, NULL
FROM limited
UNION ALL
{COUNTED_ROW}
""").columns(*_TURN_ROW)  # noqa: S608  (constant fragments; every value is a bound parameter)

# A retry of an unanswered turn whose lease expired: take the lease (compare-and-set on its
# expiry), find the stored question, read the window before it.
_TAKE_OVER = text(f"""
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
turn AS (
    SELECT m.conversation_id, m.id AS question_id FROM message AS m, taken, input
    WHERE m.id = taken.user_message_id AND m.user_id = input.user_id AND m.role = 'user'
),
steps AS (  -- what earlier attempts' tool calls did: replayed, never run again
    SELECT s.step, s.round, s.name, s.status, s.arguments, s.task
    FROM chat_tool_step AS s, turn WHERE s.user_message_id = turn.question_id
),
{_HISTORY}
{_TURN_AND_HISTORY}
UNION ALL
SELECT 'taken', NULL, NULL, NULL, NULL, NULL FROM taken
UNION ALL  -- a step's columns in the union's: step, round, name, status, {{arguments, task}}
SELECT 'step', steps.step, steps.round, steps.name, steps.status,
       jsonb_build_object('arguments', steps.arguments, 'task', steps.task)
FROM steps
""").columns(*_TURN_ROW)  # noqa: S608

_FINISH_TURN = (
    text("""
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
touched AS (  -- never back, as in the turn's first statement
    UPDATE conversation SET updated_at = greatest(conversation.updated_at, input.now)
    FROM input
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
""")
    .bindparams(bindparam("tool_calls", type_=JSONB), bindparam("response", type_=JSON))
    .columns(column("id", BigInteger))
)


def _conversation_vanished(error: exc.IntegrityError) -> bool:
    """The conversation (and its messages) were deleted after the statement's snapshot: the
    new row's foreign key finds nothing. Nothing of the statement was written."""
    return isinstance(error.orig, pg_errors.ForeignKeyViolation)


def _execute_turn_statement(
    session: Session, statement: Any, parameters: dict[str, Any]
) -> list[Row[Any]]:
    # Through the session's Core connection: the ORM's execute path (its compile state, events
    # and bind lookup) has nothing to add to a textual statement, and cost as much CPU as psycopg.
    try:
        rows = list(session.connection().execute(statement, parameters).all())
    except exc.IntegrityError as error:
        session.rollback()
        if _conversation_vanished(error):
            raise NotFound(CONVERSATION_NOT_FOUND) from None
        raise
    session.commit()
    return rows


def _opened(rows: Sequence[Sequence[Any]]) -> OpenedTurn | None:
    # One pass, each row unpacked by position (_TURN_ROW's order): reading columns by name, and
    # a pass per kind of row, cost as much as the rest of the turn's own Python.
    turn: tuple[int, int] | None = None
    history: list[HistoryMessage] = []
    steps: list[RecordedStep] = []
    for kind, id_, conversation_id, role, content, tool_calls in rows:
        if kind == "history":
            history.append(
                HistoryMessage(id=id_, role=Role(role), content=content, tool_calls=tool_calls)
            )
        elif kind == "turn" and turn is None:
            turn = (id_, conversation_id)
        elif kind == "step":
            steps.append(
                recorded_step_from(
                    step=id_,
                    round_=conversation_id,
                    name=role,
                    status=content,
                    arguments=tool_calls["arguments"],
                    task=tool_calls["task"],
                )
            )
    if turn is None:
        return None
    history.reverse()  # rows arrive newest first; the assistant reads oldest first
    steps.sort(key=lambda step: step.step)
    return OpenedTurn(
        conversation_id=turn[1], user_message_id=turn[0], history=history, recorded_steps=steps
    )


def open_turn(
    session: Session,
    *,
    user_id: str,
    conversation_id: int | None,
    content: str,
    title: str,
    window: int,
    claim: KeyClaim | None = None,
    turn_limit: int = 0,
    rate_window_seconds: int = 60,
) -> OpenedTurn:
    """Store the user's message (in a new conversation titled ``title`` when
    ``conversation_id`` is None) and read the ``window`` messages before it. With ``claim``,
    the Idempotency-Key is claimed in the same statement. NotFound if the conversation is not
    the user's (or was deleted meanwhile); KeyHeld if another attempt holds the key;
    ChatRateLimited if the user started ``turn_limit`` turns in the last window (0: no limit).
    Either way nothing is stored."""
    parameters = {
        **claim_parameters(claim, user_id=user_id, now=utc_now()),
        "conversation_id": conversation_id,
        "title": title,
        "content": content,
        "window": window,
        "turn_limit": turn_limit,
        "rate_window_seconds": rate_window_seconds,
    }
    rows = _execute_turn_statement(session, _OPEN_TURN, parameters)
    turn = _opened(rows)
    if turn is not None:
        return turn
    limited = next((row for row in rows if row.kind == "limited"), None)
    if limited is not None:
        raise ChatRateLimited(retry_after_seconds=int(limited.id))
    if not any(row.kind == "conversation" for row in rows):
        raise NotFound(CONVERSATION_NOT_FOUND)
    counted = next((row for row in rows if row.kind == "counted"), None)
    if counted is not None:  # a racing attempt at this turn claimed the key: not a new turn
        session.connection().execute(UNCOUNT, {"user_id": user_id, "window": counted.id})
        session.commit()
    raise KeyHeld()


def take_over(
    session: Session, *, user_id: str, key: str, now: datetime, lease_until: datetime, window: int
) -> OpenedTurn | None:
    """Take an unanswered key whose lease has expired: its stored question and the window
    before it, or None if another attempt holds or answered it. NotFound if the question was
    deleted (the key is then taken, until ``lease_until`` or until the caller settles it)."""
    rows = _execute_turn_statement(
        session,
        _TAKE_OVER,
        {"user_id": user_id, "key": key, "now": now, "lease_until": lease_until, "window": window},
    )
    turn = _opened(rows)
    if turn is not None:
        return turn
    if any(row.kind == "taken" for row in rows):
        raise NotFound(CONVERSATION_NOT_FOUND)
    return None


def finish_turn(
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
    """Store the reply to ``reply_to_id`` and return its id; with ``claim``, record
    ``response`` on the key in the same statement. NotFound if the conversation was deleted
    while the assistant worked; TurnAlreadyAnswered if another attempt stored a reply first."""
    parameters = {
        "conversation_id": conversation_id,
        "user_id": user_id,
        "content": content,
        "tool_calls": tool_calls,
        "reply_to_id": reply_to_id,
        "now": utc_now(),
        "key": claim.key if claim is not None else None,
        "response": response,
    }
    try:
        reply_id = session.connection().execute(_FINISH_TURN, parameters).scalar_one_or_none()
    except exc.IntegrityError as error:
        session.rollback()
        if _conversation_vanished(error):
            raise NotFound(CONVERSATION_NOT_FOUND) from None
        if claim is None:
            raise  # two replies to one question without a key: a bug, not a race to hide
        raise TurnAlreadyAnswered() from None
    session.commit()
    if reply_id is None:
        raise NotFound(CONVERSATION_NOT_FOUND)  # deleted before the reply: the question too
    return int(reply_id)
