"""Durable tool calls: each write a chat turn makes is recorded in the same statement as its effect.

A tool call that changes a task is one data-modifying CTE: the task's INSERT / UPDATE / DELETE and
the ``chat_tool_step`` row keyed by (the user message the turn answers, the call's index in the
turn). Both commit together or neither does, and a second attempt at the same step fails on the
primary key with its effect rolled back. So a turn retried with its Idempotency-Key, or taken
over after its attempt died, finds its recorded steps (read in the statement that takes the turn
over) and replays them instead of running them again: a model call may repeat, a tool call never.

One statement, not a transaction: in autocommit a transaction would add BEGIN and COMMIT (two
round trips per tool call, and a server connection pinned through PgBouncer between them); the
CTE costs what the bare write cost. Reads (``list_tasks``) and refused calls change nothing and
are not recorded: a retry runs them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, Session, SQLModel

from todo_core.db import UTCDateTime, utc_now
from todo_core.tasks.models import TaskPublic


class ChatToolStep(SQLModel, table=True):
    """One tool call of a turn that changed a task, with what it did."""

    __tablename__ = "chat_tool_step"

    user_message_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("message.id", ondelete="CASCADE"), primary_key=True)
    )
    step: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    round: int = Field(default=0)
    name: str = Field(max_length=64)
    arguments: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    status: str = Field(max_length=16)
    task: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


@dataclass(frozen=True, slots=True)
class RecordedStep:
    """A tool call as a retry replays it."""

    step: int
    round: int
    name: str
    arguments: dict[str, Any]
    result: dict[str, Any]


def task_result_from(status: str, row: dict[str, Any]) -> dict[str, Any]:
    """A write tool's result from the task's row (a database row, or its stored JSON)."""
    # TaskPublic answers in UTC, whatever zone the row's timestamps come in (see UTCTimestamp).
    public = TaskPublic.model_validate(row).model_dump(mode="json")
    return {"task_id": public["id"], "status": status, "title": public["title"], "task": public}


def recorded_step_from(
    *,
    step: int,
    round_: int,
    name: str,
    status: str,
    arguments: dict[str, Any],
    task: dict[str, Any],
) -> RecordedStep:
    """A ``chat_tool_step`` row as a replayable call (its result rebuilt from the task's row)."""
    return RecordedStep(
        step=int(step),
        round=int(round_),
        name=str(name),
        arguments=dict(arguments),
        result=task_result_from(str(status), dict(task)),
    )


_TASK_COLUMNS = "id, user_id, title, description, completed, created_at, updated_at"
# The step is recorded only if the effect happened (a missing task records nothing) and only for
# a turn (a tool run outside one, as in tests, records nothing).
_RECORD = """,
step AS (
    INSERT INTO chat_tool_step
        (user_message_id, step, round, name, arguments, status, task, created_at)
    SELECT CAST(:user_message_id AS bigint), CAST(:step AS integer), CAST(:round AS integer),
           CAST(:name AS varchar), CAST(:arguments AS jsonb), CAST(:status AS varchar),
           to_jsonb(effect), CAST(:now AS timestamptz)
    FROM effect WHERE CAST(:user_message_id AS bigint) IS NOT NULL
)
SELECT * FROM effect
"""

_ADD = f"""
WITH effect AS (
    INSERT INTO task (user_id, title, description, completed, created_at, updated_at)
    VALUES (CAST(:user_id AS varchar), CAST(:title AS varchar), CAST(:description AS varchar),
            FALSE, CAST(:now AS timestamptz), CAST(:now AS timestamptz))
    RETURNING {_TASK_COLUMNS}
){_RECORD}"""  # noqa: S608  (constant fragments; values are bound parameters)

_SET_COMPLETED = f"""
WITH effect AS (
    UPDATE task SET completed = CAST(:completed AS boolean), updated_at = CAST(:now AS timestamptz)
    WHERE id = CAST(:task_id AS bigint) AND user_id = CAST(:user_id AS varchar)
    RETURNING {_TASK_COLUMNS}
){_RECORD}"""  # noqa: S608

_DELETE = f"""
WITH effect AS (
    DELETE FROM task
    WHERE id = CAST(:task_id AS bigint) AND user_id = CAST(:user_id AS varchar)
    RETURNING {_TASK_COLUMNS}
){_RECORD}"""  # noqa: S608

_UPDATE_COLUMNS = {
    "title": "CAST(:title AS varchar)",
    "description": "CAST(:description AS varchar)",
}


def _update_statement(fields: list[str]) -> str:
    assignments = ", ".join(f"{name} = {_UPDATE_COLUMNS[name]}" for name in fields)
    return f"""
WITH effect AS (
    UPDATE task SET {assignments}, updated_at = CAST(:now AS timestamptz)
    WHERE id = CAST(:task_id AS bigint) AND user_id = CAST(:user_id AS varchar)
    RETURNING {_TASK_COLUMNS}
){_RECORD}"""  # noqa: S608  (column names from _UPDATE_COLUMNS only)


_STATEMENTS = {
    name: text(sql).bindparams(bindparam("arguments", type_=JSONB))
    for name, sql in {
        "add": _ADD,
        "set_completed": _SET_COMPLETED,
        "delete": _DELETE,
        "update:title": _update_statement(["title"]),
        "update:description": _update_statement(["description"]),
        "update:title,description": _update_statement(["title", "description"]),
    }.items()
}
"""Built once per container."""


@dataclass(frozen=True, slots=True)
class StepKey:
    """Where a write is recorded: the turn's question, the call's index, the model's round."""

    user_message_id: int | None
    step: int
    round: int


def run_recorded(
    session: Session,
    statement: str,
    *,
    key: StepKey,
    name: str,
    arguments: dict[str, Any],
    status: str,
    values: dict[str, Any],
) -> dict[str, Any] | None:
    """Run one write with its record; the task's row, or None if no task was affected.
    IntegrityError if the step is already recorded (another attempt ran it): nothing changed."""
    try:  # on the session's Core connection, as the turn's own statements (see chat.store)
        row = (
            session.connection()
            .execute(
                _STATEMENTS[statement],
                {
                    "user_message_id": key.user_message_id,
                    "step": key.step,
                    "round": key.round,
                    "name": name,
                    "arguments": arguments,
                    "status": status,
                    "now": utc_now(),
                    **values,
                },
            )
            .one_or_none()
        )
    except Exception:
        session.rollback()
        raise
    session.commit()
    return dict(row._mapping) if row is not None else None


_READ_STEP = text(
    "SELECT step, round, name, arguments, status, task FROM chat_tool_step"
    " WHERE user_message_id = :user_message_id AND step = :step"
)


def read_step(session: Session, *, user_message_id: int, step: int) -> RecordedStep | None:
    """A recorded step (after a write lost the race for it to another attempt)."""
    row = session.execute(
        _READ_STEP, {"user_message_id": user_message_id, "step": step}
    ).one_or_none()
    session.commit()
    if row is None:
        return None
    return recorded_step_from(
        step=row.step,
        round_=row.round,
        name=row.name,
        status=row.status,
        arguments=row.arguments,
        task=row.task,
    )
