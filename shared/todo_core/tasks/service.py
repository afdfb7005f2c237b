"""Task operations. Each is one SQL statement, so each is atomic and costs one round trip.

Every query is scoped by ``user_id``: another user's task is simply not found.

The statements are SQLAlchemy Core, built once when the module is imported, with every value a
named bound parameter: SQLAlchemy compiles each once per container (its compiled cache) and a
request only binds values. Rows go straight into :class:`TaskPublic`, what the API returns: a read
builds no ORM object and touches no identity map, which cost more than the SQL itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Select, bindparam, delete, insert, not_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.sql.dml import ReturningDelete, ReturningUpdate
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from todo_core.db import utc_now
from todo_core.errors import NotFound
from todo_core.tasks.models import Task, TaskCreate, TaskPublic, TaskStatus, TaskUpdate

TASK_NOT_FOUND = "Task not found"

_FIELDS = tuple(TaskPublic.model_fields)
"""The columns every statement returns, in TaskPublic's order (its JSON's key order)."""
_RETURNED = tuple(col(getattr(Task, name)) for name in _FIELDS)
_UPDATABLE = ("title", "description", "completed")

# No parameter is named after a column: in an INSERT or UPDATE, SQLAlchemy would read such a
# name as one more column to set.
_THE_TASK = (col(Task.id) == bindparam("task_id")) & (col(Task.user_id) == bindparam("owner"))
_STATUS_FILTER: Mapping[TaskStatus, ColumnElement[bool] | None] = {
    TaskStatus.all: None,
    TaskStatus.pending: col(Task.completed).is_(False),
    TaskStatus.completed: col(Task.completed).is_(True),
}


def _list_statement(status: TaskStatus, *, after_cursor: bool = False) -> Select[Any]:
    query = select(*_RETURNED).where(col(Task.user_id) == bindparam("owner"))
    status_filter = _STATUS_FILTER[status]
    if status_filter is not None:
        query = query.where(status_filter)
    if after_cursor:  # the next page: older tasks than the previous page's last
        query = query.where(col(Task.id) < bindparam("before_id"))
    return query.order_by(col(Task.id).desc()).limit(bindparam("limit"))


_LIST = {status: _list_statement(status) for status in TaskStatus}
_LIST_AFTER = {status: _list_statement(status, after_cursor=True) for status in TaskStatus}
_GET = select(*_RETURNED).where(_THE_TASK)
_CREATE = (
    insert(Task)
    .values(
        user_id=bindparam("owner"),
        title=bindparam("new_title"),
        description=bindparam("new_description"),
        completed=False,
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(*_RETURNED)
)
_TOGGLE = (
    update(Task)
    .where(_THE_TASK)
    .values(completed=not_(col(Task.completed)), updated_at=bindparam("now"))
    .returning(*_RETURNED)
)
_DELETE = delete(Task).where(_THE_TASK).returning(*_RETURNED)


def _update_statement(fields: tuple[str, ...]) -> ReturningUpdate[Any]:
    """UPDATE of ``fields`` (and ``updated_at``)."""
    values: dict[str, Any] = {field: bindparam(f"new_{field}") for field in fields}
    return (
        update(Task)
        .where(_THE_TASK)
        .values(**values, updated_at=bindparam("now"))
        .returning(*_RETURNED)
    )


_UPDATE = {
    fields: _update_statement(fields)
    for size in range(len(_UPDATABLE) + 1)
    for fields in combinations(_UPDATABLE, size)
}
"""One UPDATE per set of fields a client may send (in ``_UPDATABLE``'s order), all built at
import so that init compiles them with the other statements."""


_TASKS = TypeAdapter(list[TaskPublic])


def _task(row: Row[Any] | None) -> TaskPublic:
    if row is None:
        raise NotFound(TASK_NOT_FOUND)
    return TaskPublic.model_validate(dict(zip(_FIELDS, row, strict=True)))


def _tasks(rows: Iterable[Sequence[Any]]) -> list[TaskPublic]:
    # One validation call for the whole list: pydantic's loop, not Python's.
    return _TASKS.validate_python([dict(zip(_FIELDS, row, strict=True)) for row in rows])


@dataclass(frozen=True, slots=True)
class TaskPage:
    tasks: list[TaskPublic]
    next_cursor: str | None
    """The cursor of the next (older) page; None on the last page."""


def list_task_page(
    session: Session,
    *,
    user_id: str,
    status: TaskStatus = TaskStatus.all,
    limit: int = 100,
    cursor: str | None = None,
) -> TaskPage:
    """One page of the user's tasks with the given status, newest first: at most ``limit``,
    older than the task ``cursor`` names if it is given. Keyset paging: a task added or deleted
    between two pages neither shifts nor repeats the others."""
    parameters: dict[str, Any] = {"owner": user_id, "limit": limit + 1}
    statement = _LIST[status]
    if cursor is not None:
        statement = _LIST_AFTER[status]
        parameters["before_id"] = int(cursor)
    # all(): one fetchall from the driver; iterating the result fetches row by row.
    rows = session.connection().execute(statement, parameters).all()
    tasks = _tasks(rows[:limit])
    next_cursor = str(tasks[-1].id) if len(rows) > limit else None
    return TaskPage(tasks, next_cursor)


def list_tasks(
    session: Session, *, user_id: str, status: TaskStatus = TaskStatus.all, limit: int = 100
) -> list[TaskPublic]:
    """The user's newest tasks with the given status, at most ``limit`` of them (the first page)."""
    return list_task_page(session, user_id=user_id, status=status, limit=limit).tasks


def create_task(session: Session, *, user_id: str, data: TaskCreate) -> TaskPublic:
    """Store a new, pending task for the user and return it."""
    row = (
        session.connection()
        .execute(
            _CREATE,
            {
                "owner": user_id,
                "new_title": data.title,
                "new_description": data.description,
                "now": utc_now(),
            },
        )
        .one()
    )
    session.commit()
    return _task(row)


def get_task(session: Session, *, user_id: str, task_id: int) -> TaskPublic:
    """The user's task ``task_id``; NotFound if it does not exist or is someone else's."""
    row = session.connection().execute(_GET, {"task_id": task_id, "owner": user_id}).one_or_none()
    return _task(row)


def _change_one(
    session: Session,
    statement: ReturningUpdate[Any] | ReturningDelete[Any],
    *,
    user_id: str,
    task_id: int,
    values: Mapping[str, Any],
) -> TaskPublic:
    row = (
        session.connection()
        .execute(statement, {**values, "task_id": task_id, "owner": user_id})
        .one_or_none()
    )
    session.commit()
    return _task(row)


def update_task(session: Session, *, user_id: str, task_id: int, data: TaskUpdate) -> TaskPublic:
    """Change the fields the client sent; fields left out keep their value."""
    sent = data.model_dump(exclude_unset=True)
    fields = tuple(field for field in _UPDATABLE if field in sent)
    return _change_one(
        session,
        _UPDATE[fields],
        user_id=user_id,
        task_id=task_id,
        values={**{f"new_{field}": sent[field] for field in fields}, "now": utc_now()},
    )


def toggle_task(session: Session, *, user_id: str, task_id: int) -> TaskPublic:
    """Flip the task's completion in one statement, so concurrent toggles never lose an update."""
    return _change_one(
        session, _TOGGLE, user_id=user_id, task_id=task_id, values={"now": utc_now()}
    )


def delete_task(session: Session, *, user_id: str, task_id: int) -> TaskPublic:
    """Delete the task and return what it was."""
    return _change_one(session, _DELETE, user_id=user_id, task_id=task_id, values={})
