"""Task operations. Each is one SQL statement, so each is atomic and costs one round trip.

Every query is scoped by ``user_id``: another user's task is simply not found.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, not_, select, update
from sqlmodel import Session, col

from todo_core.db import utc_now
from todo_core.errors import NotFound
from todo_core.tasks.models import Task, TaskCreate, TaskStatus, TaskUpdate

TASK_NOT_FOUND = "Task not found"


def list_tasks(
    session: Session, *, user_id: str, status: TaskStatus = TaskStatus.all, limit: int = 100
) -> list[Task]:
    """The user's tasks with the given status, newest first, at most ``limit`` of them."""
    query = select(Task).where(col(Task.user_id) == user_id)
    if status is TaskStatus.pending:
        query = query.where(col(Task.completed).is_(False))
    elif status is TaskStatus.completed:
        query = query.where(col(Task.completed).is_(True))
    query = query.order_by(col(Task.id).desc()).limit(limit)
    return list(session.scalars(query))


def create_task(session: Session, *, user_id: str, data: TaskCreate) -> Task:
    """Store a new, pending task for the user and return it."""
    now = utc_now()
    statement = (
        insert(Task)
        .values(
            user_id=user_id,
            title=data.title,
            description=data.description,
            completed=False,
            created_at=now,
            updated_at=now,
        )
        .returning(Task)
    )
    task = session.scalars(statement).one()
    session.commit()
    return task


def get_task(session: Session, *, user_id: str, task_id: int) -> Task:
    """The user's task ``task_id``; NotFound if it does not exist or is someone else's."""
    task = session.scalars(
        select(Task).where(col(Task.id) == task_id, col(Task.user_id) == user_id)
    ).one_or_none()
    if task is None:
        raise NotFound(TASK_NOT_FOUND)
    return task


def _update_one(session: Session, *, user_id: str, task_id: int, values: dict[str, Any]) -> Task:
    statement = (
        update(Task)
        .where(col(Task.id) == task_id, col(Task.user_id) == user_id)
        .values(**values, updated_at=utc_now())
        .returning(Task)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    task = session.scalars(statement).one_or_none()
    session.commit()
    if task is None:
        raise NotFound(TASK_NOT_FOUND)
    return task


def update_task(session: Session, *, user_id: str, task_id: int, data: TaskUpdate) -> Task:
    """Change the fields the client sent; fields left out keep their value."""
    return _update_one(
        session, user_id=user_id, task_id=task_id, values=data.model_dump(exclude_unset=True)
    )


def set_task_completed(session: Session, *, user_id: str, task_id: int, completed: bool) -> Task:
    """Mark the task completed (or pending again)."""
    return _update_one(session, user_id=user_id, task_id=task_id, values={"completed": completed})


def toggle_task(session: Session, *, user_id: str, task_id: int) -> Task:
    """Flip the task's completion in one statement, so concurrent toggles never lose an update."""
    return _update_one(
        session, user_id=user_id, task_id=task_id, values={"completed": not_(col(Task.completed))}
    )


def delete_task(session: Session, *, user_id: str, task_id: int) -> Task:
    """Delete the task and return what it was."""
    statement = (
        delete(Task)
        .where(col(Task.id) == task_id, col(Task.user_id) == user_id)
        .returning(Task)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    task = session.scalars(statement).one_or_none()
    session.commit()
    if task is None:
        raise NotFound(TASK_NOT_FOUND)
    return task
