"""The task tools an assistant may call: the task service, scoped to one user, with every call
recorded as ``{name, arguments, result}``.

The built-in assistant calls these directly; an LLM agent gets the same tools (their names and
arguments are the function-calling schema), so isolation and validation are the REST API's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from todo_core.db import stored_id
from todo_core.errors import NotFound
from todo_core.tasks import service
from todo_core.tasks.models import TaskCreate, TaskPublic, TaskStatus, TaskUpdate

LIST_LIMIT = 50


def task_json(task: TaskPublic) -> dict[str, Any]:
    return TaskPublic.model_validate(task).model_dump(mode="json")


def _error(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": kind, "message": message, **extra}


@dataclass
class TaskTools:
    """The user's task operations, each recorded in :attr:`calls` as it is made."""

    session: Session
    user_id: str
    calls: list[dict[str, Any]] = field(default_factory=list)

    def _record(
        self, name: str, arguments: dict[str, Any], result: dict[str, Any]
    ) -> dict[str, Any]:
        self.calls.append({"name": name, "arguments": arguments, "result": result})
        return result

    def add_task(self, *, title: str, description: str | None = None) -> dict[str, Any]:
        arguments: dict[str, Any] = {"title": title}
        if description is not None:
            arguments["description"] = description
        try:
            data = TaskCreate.model_validate({"title": title, "description": description})
        except ValidationError as error:
            return self._record("add_task", arguments, _error("invalid", _first_message(error)))
        task = service.create_task(self.session, user_id=self.user_id, data=data)
        return self._record("add_task", arguments, {"task": task_json(task)})

    def list_tasks(self, *, status: TaskStatus = TaskStatus.all) -> dict[str, Any]:
        tasks = service.list_tasks(
            self.session, user_id=self.user_id, status=status, limit=LIST_LIMIT
        )
        result = {"tasks": [task_json(task) for task in tasks]}
        return self._record("list_tasks", {"status": status.value}, result)

    def _resolve(self, reference: int | str) -> TaskPublic | dict[str, Any]:
        """A task by id, or by title: an exact (case-insensitive) match, else a unique partial."""
        if isinstance(reference, int):
            try:
                return service.get_task(self.session, user_id=self.user_id, task_id=reference)
            except NotFound:
                return _error("not_found", f"No task {reference}.")
        wanted = reference.casefold()
        tasks = service.list_tasks(self.session, user_id=self.user_id, limit=500)
        exact = [t for t in tasks if t.title.casefold() == wanted]
        partial = exact or [t for t in tasks if wanted in t.title.casefold()]
        if len(partial) == 1:
            return partial[0]
        if not partial:
            return _error("not_found", f"No task matches “{reference}”.")
        return _error(
            "ambiguous",
            f"Several tasks match “{reference}”.",
            candidates=[task_json(t) for t in partial[:10]],
        )

    @staticmethod
    def _reference_arguments(reference: int | str) -> dict[str, Any]:
        return {"task_id": reference} if isinstance(reference, int) else {"title": reference}

    def set_completed(self, reference: int | str, *, completed: bool) -> dict[str, Any]:
        name = "complete_task" if completed else "reopen_task"
        arguments = self._reference_arguments(reference)
        found = self._resolve(reference)
        if isinstance(found, dict):
            return self._record(name, arguments, found)
        try:
            task = service.set_task_completed(
                self.session, user_id=self.user_id, task_id=stored_id(found.id), completed=completed
            )
        except NotFound:
            return self._record(name, arguments, _gone(found))
        return self._record(name, arguments, {"task": task_json(task)})

    def delete_task(self, reference: int | str) -> dict[str, Any]:
        arguments = self._reference_arguments(reference)
        found = self._resolve(reference)
        if isinstance(found, dict):
            return self._record("delete_task", arguments, found)
        try:
            task = service.delete_task(
                self.session, user_id=self.user_id, task_id=stored_id(found.id)
            )
        except NotFound:
            return self._record("delete_task", arguments, _gone(found))
        return self._record("delete_task", arguments, {"deleted": task_json(task)})

    def update_task(
        self, reference: int | str, *, title: str | None = None, description: str | None = None
    ) -> dict[str, Any]:
        arguments = self._reference_arguments(reference)
        changes: dict[str, Any] = {}
        if title is not None:
            changes["title"] = title
        if description is not None:
            changes["description"] = description
        arguments.update(changes)
        try:
            data = TaskUpdate.model_validate(changes)
        except ValidationError as error:
            return self._record("update_task", arguments, _error("invalid", _first_message(error)))
        found = self._resolve(reference)
        if isinstance(found, dict):
            return self._record("update_task", arguments, found)
        try:
            task = service.update_task(
                self.session, user_id=self.user_id, task_id=stored_id(found.id), data=data
            )
        except NotFound:
            return self._record("update_task", arguments, _gone(found))
        return self._record("update_task", arguments, {"task": task_json(task)})


def _gone(task: TaskPublic) -> dict[str, Any]:
    # Found a moment ago, deleted (by another request) before the change: the same answer as
    # a task that was never there, recorded as the tool's result rather than failing the turn.
    return _error("not_found", f"No task {stored_id(task.id)}.")


def _first_message(error: ValidationError) -> str:
    first = error.errors()[0]
    field_name = ".".join(str(part) for part in first["loc"])
    return f"{field_name}: {first['msg']}"
