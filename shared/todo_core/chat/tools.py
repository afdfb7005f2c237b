"""The task tools an assistant may call, the same for the built-in assistant and for a model.

Five tools (``add_task``, ``list_tasks``, ``complete_task``, ``delete_task``, ``update_task``) and
``reopen_task``, each the task service scoped to one user: ``user_id`` is bound from the token and
is never a tool parameter, so whatever a model asks, it acts on that user's tasks only. Every call
is recorded as ``{name, arguments, result}``. A write's result carries ``task_id``, ``status``
(created / completed / reopened / updated / deleted) and ``title``, with the task; a listing has
``status: listed``; a failure is ``{error, message}`` and goes back to the model as the tool's
answer (never an HTTP error). A model's calls are recorded within bounds: each one's name and
arguments (:data:`TOOL_NAME_MAX`, :data:`ARGUMENTS_MAX_CHARS`), and the turn's whole record
(:data:`TURN_CALLS_MAX_BYTES`).

:data:`TOOL_SCHEMAS` are the function-calling schemas, built once per container;
:meth:`TaskTools.call` validates a model's arguments (a JSON string) before anything runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic import Field as PydanticField
from pydantic_core import to_json
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from todo_core.chat.models import CONVERSATION_NOT_FOUND
from todo_core.chat.tool_steps import (
    RecordedStep,
    StepKey,
    read_step,
    run_recorded,
    task_result_from,
)
from todo_core.db import stored_id
from todo_core.errors import NotFound
from todo_core.ids import MAX_ID
from todo_core.observability import logger
from todo_core.tasks import service
from todo_core.tasks.models import (
    DESCRIPTION_MAX,
    TITLE_MAX,
    Task,
    TaskCreate,
    TaskPublic,
    TaskStatus,
    TaskUpdate,
)
from todo_core.text import is_storable, storable

LIST_LIMIT = 50
FIND_LIMIT = 500
"""How many of the newest tasks a title reference is looked up among (the built-in assistant)."""
TOOL_NAME_MAX = 64
"""A model's unknown tool name is recorded cut to this many characters (every known name is
shorter, and ``chat_tool_step.name`` holds as many): it used to be recorded as long as sent."""
ARGUMENTS_MAX_CHARS = 16_000
"""A model's arguments longer than this (as the JSON text it sent) are refused unread with
``invalid_arguments`` and recorded as ``{}``; an invalid call's arguments used to be recorded at
whatever size the model sent. The largest valid ones, ``update_task`` with a 16-digit id, a
200-character title and a 1,000-character description, are 1,261 characters in plain UTF-8 JSON
(2,461 if every character is a ``"``, escaped), but a provider that escapes everything outside
ASCII, as Python's ``json.dumps`` does by default, writes a character beyond the BMP as a
12-character surrogate pair: 14,461 characters. The limit leaves 1,539 above that (room for
whitespace), and bounds one refused call's record to about 128 KB (its arguments and an error
message quoting one of their keys, at most 4 UTF-8 bytes per character)."""
TURN_CALLS_MAX_BYTES = 256 * 1024
"""Once a turn's recorded tool calls (each one's name, arguments and result, as the JSON the
response carries them in) reach this many bytes, a model's further calls are answered with a
``too_many_calls`` error, neither run nor recorded. The calls were bounded in number only (80 a
turn), and one listing of 50 tasks may be 255 KB (4-byte characters), so a model listing again
and again made a response of megabytes, past Lambda's 6 MB. A call's size is known once it has
run, so the record may pass the budget by one call: at most 256 KB + 255 KB, about 517 KB (the
README adds up the whole response). 256 KB is room for any turn a user means: 16 writes of the
largest tasks (about 11 KB each, arguments and result), or four listings of 50 tasks with
1,000-character descriptions in ASCII."""
ToolResult = dict[str, Any]


def task_json(task: Task | TaskPublic) -> dict[str, Any]:
    return TaskPublic.model_validate(task).model_dump(mode="json")


def tool_error(kind: str, message: str, **extra: Any) -> ToolResult:
    return {"error": kind, "message": message, **extra}


def _json_integer(value: Any) -> Any:
    # A model may send 3, 3.0 or "3"; a boolean or "three" is refused.
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


TaskIdArgument = Annotated[
    int, PydanticField(ge=1, le=MAX_ID, strict=True), BeforeValidator(_json_integer)
]


class _Arguments(BaseModel):
    # A model that invents a parameter (``user_id`` above all) gets an error, not silence.
    model_config = ConfigDict(extra="forbid")


class AddTaskArguments(_Arguments):
    title: str
    description: str | None = None


class ListTasksArguments(_Arguments):
    status: TaskStatus = TaskStatus.all


class TaskIdArguments(_Arguments):
    task_id: TaskIdArgument


class UpdateTaskArguments(_Arguments):
    task_id: TaskIdArgument
    title: str | None = None
    description: str | None = None


def _function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> Any:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            },
        },
    }


_TASK_ID = {"type": "integer", "minimum": 1, "description": "The task's id (from a tool result)."}
_TITLE = {
    "type": "string",
    "minLength": 1,
    "maxLength": TITLE_MAX,
    "description": "The task's title.",
}
_DESCRIPTION = {
    "type": "string",
    "maxLength": DESCRIPTION_MAX,
    "description": "Optional details.",
}
TOOL_SCHEMAS: list[dict[str, Any]] = [
    _function(
        "add_task",
        "Create a new pending task for the user.",
        {"title": _TITLE, "description": _DESCRIPTION},
        ["title"],
    ),
    _function(
        "list_tasks",
        "List the user's tasks, newest first.",
        {"status": {"type": "string", "enum": [s.value for s in TaskStatus], "default": "all"}},
        [],
    ),
    _function("complete_task", "Mark a task as completed.", {"task_id": _TASK_ID}, ["task_id"]),
    _function(
        "reopen_task", "Mark a completed task as pending again.", {"task_id": _TASK_ID}, ["task_id"]
    ),
    _function("delete_task", "Delete a task.", {"task_id": _TASK_ID}, ["task_id"]),
    _function(
        "update_task",
        "Change a task's title and/or description.",
        {"task_id": _TASK_ID, "title": _TITLE, "description": _DESCRIPTION},
        ["task_id"],
    ),
]
"""The function-calling schemas of the tools, in the Chat Completions ``tools`` shape."""
TOOL_NAMES = frozenset(schema["function"]["name"] for schema in TOOL_SCHEMAS)


def _first_message(error: ValidationError) -> str:
    first = error.errors()[0]
    field_name = ".".join(str(part) for part in first["loc"]) or "arguments"
    return f"{field_name}: {first['msg']}"


@dataclass
class TaskTools:
    """The user's task operations, each recorded in :attr:`calls` as it is made.

    Bound to a turn (``user_message_id``), each write commits with its record in
    ``chat_tool_step`` (see :mod:`todo_core.chat.tool_steps`), as step ``next_step`` of the turn.
    A retried turn passes the steps already recorded: the built-in assistant, deterministic,
    makes the same calls again and each recorded one is replayed by its index instead of run; a
    model is given them as past rounds (:meth:`resume`) and continues after them.
    """

    session: Session
    user_id: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    user_message_id: int | None = None
    recorded: dict[int, RecordedStep] = field(default_factory=dict)
    next_step: int = 0
    round: int = 0
    """The model's round the next calls belong to (how a retry regroups them)."""
    recorded_bytes: int = 0
    """The size of :attr:`calls` as JSON (UTF-8), replayed ones included: a retry spends the
    budget (:data:`TURN_CALLS_MAX_BYTES`) as its first attempt did."""

    def _record(self, name: str, arguments: dict[str, Any], result: ToolResult) -> ToolResult:
        call = {"name": name, "arguments": arguments, "result": result}
        self.calls.append(call)
        self.recorded_bytes += len(to_json(call))
        return result

    def resume(self) -> list[RecordedStep]:
        """The recorded steps, in order, counted as this turn's first calls; later calls are
        numbered after them (a model continues from them)."""
        steps = [self.recorded[step] for step in sorted(self.recorded)]
        for step in steps:
            self._record(step.name, step.arguments, step.result)
        if steps:
            self.next_step = steps[-1].step + 1
            self.round = steps[-1].round + 1
        self.recorded = {}
        return steps

    def _take_step(self) -> int:
        step = self.next_step
        self.next_step += 1
        return step

    def _write(
        self,
        name: str,
        arguments: dict[str, Any],
        *,
        statement: str,
        status: str,
        values: dict[str, Any],
        task_id: int | None = None,
    ) -> ToolResult:
        """Run a write with its record, or replay the record of an earlier attempt's call."""
        step = self._take_step()
        replayed = self.recorded.get(step)
        if replayed is not None and replayed.name == name:
            return self._record(replayed.name, replayed.arguments, replayed.result)
        key = StepKey(user_message_id=self.user_message_id, step=step, round=self.round)
        try:
            row = run_recorded(
                self.session,
                statement,
                key=key,
                name=name,
                arguments=arguments,
                status=status,
                values={"user_id": self.user_id, **values},
            )
        except IntegrityError:
            # Another attempt at this turn ran this step first (its effect stands, ours was
            # rolled back with the failed record), or the conversation was deleted meanwhile.
            if self.user_message_id is None:
                raise
            other = read_step(self.session, user_message_id=self.user_message_id, step=step)
            if other is None:
                raise NotFound(CONVERSATION_NOT_FOUND) from None
            return self._record(other.name, other.arguments, other.result)
        if row is None:
            return self._record(name, arguments, _no_task(task_id or 0))
        return self._record(name, arguments, task_result_from(status, row))

    # --- the tools -----------------------------------------------------------------------

    def add_task(self, *, title: str, description: str | None = None) -> ToolResult:
        arguments: dict[str, Any] = {"title": title}
        if description is not None:
            arguments["description"] = description
        try:
            data = TaskCreate.model_validate({"title": title, "description": description})
        except ValidationError as error:
            self._take_step()
            return self._record("add_task", arguments, tool_error("invalid", _first_message(error)))
        return self._write(
            "add_task",
            arguments,
            statement="add",
            status="created",
            values={"title": data.title, "description": data.description},
        )

    def list_tasks(self, *, status: TaskStatus = TaskStatus.all) -> ToolResult:
        self._take_step()  # a read: run again by a retry, never recorded
        tasks = service.list_tasks(
            self.session, user_id=self.user_id, status=status, limit=LIST_LIMIT
        )
        listed = [task_json(task) for task in tasks]
        result = {"status": "listed", "count": len(listed), "tasks": listed}
        return self._record("list_tasks", {"status": status.value}, result)

    def complete_task(self, *, task_id: int) -> ToolResult:
        return self._set_completed("complete_task", task_id, completed=True)

    def reopen_task(self, *, task_id: int) -> ToolResult:
        return self._set_completed("reopen_task", task_id, completed=False)

    def _set_completed(self, name: str, task_id: int, *, completed: bool) -> ToolResult:
        return self._write(
            name,
            {"task_id": task_id},
            statement="set_completed",
            status="completed" if completed else "reopened",
            values={"task_id": task_id, "completed": completed},
            task_id=task_id,
        )

    def delete_task(self, *, task_id: int) -> ToolResult:
        return self._write(
            "delete_task",
            {"task_id": task_id},
            statement="delete",
            status="deleted",
            values={"task_id": task_id},
            task_id=task_id,
        )

    def update_task(
        self, *, task_id: int, title: str | None = None, description: str | None = None
    ) -> ToolResult:
        changes: dict[str, Any] = {}
        if title is not None:
            changes["title"] = title
        if description is not None:
            changes["description"] = description
        arguments = {"task_id": task_id, **changes}
        if not changes:
            self._take_step()
            return self._record(
                "update_task", arguments, tool_error("invalid", "Give a title or a description.")
            )
        try:
            data = TaskUpdate.model_validate(changes)
        except ValidationError as error:
            self._take_step()
            return self._record(
                "update_task", arguments, tool_error("invalid", _first_message(error))
            )
        valid = data.model_dump(exclude_unset=True)
        return self._write(
            "update_task",
            arguments,
            statement="update:" + ",".join(f for f in ("title", "description") if f in valid),
            status="updated",
            values={"task_id": task_id, **valid},
            task_id=task_id,
        )

    # --- a model's call ------------------------------------------------------------------

    def call(self, name: str, raw_arguments: str | None) -> ToolResult:
        """Run the tool a model asked for, its arguments given as the JSON text the model wrote.
        An unknown tool, unreadable JSON or invalid arguments are recorded as a tool error for
        the model to read and correct; nothing runs. Once the turn's record has reached
        :data:`TURN_CALLS_MAX_BYTES`, no call runs and none is recorded: each gets a
        ``too_many_calls`` error."""
        if self.recorded_bytes >= TURN_CALLS_MAX_BYTES:
            logger.warning(
                "tool calls of the turn reached %d bytes; call not run", self.recorded_bytes
            )
            return tool_error(
                "too_many_calls",
                "This turn's tool calls have reached their size limit: this call was not run,"
                " and no other will be in this turn. Answer the user with what you have.",
            )
        # An unknown name is recorded as it came, cut to TOOL_NAME_MAX (a known one is shorter).
        name = storable(name[:TOOL_NAME_MAX])
        parsed = _read_arguments(raw_arguments)
        if isinstance(parsed, str):  # why they are refused; recorded as {}
            self._take_step()
            return self._record(name, {}, tool_error("invalid_arguments", parsed))
        entry = _DISPATCH.get(name)
        if entry is None:
            self._take_step()
            known = ", ".join(sorted(TOOL_NAMES))
            return self._record(
                name, parsed, tool_error("unknown_tool", f"No tool {name!r}; use one of: {known}.")
            )
        model, run = entry
        try:
            arguments = model.model_validate(parsed)
        except ValidationError as error:
            self._take_step()
            return self._record(
                name, parsed, tool_error("invalid_arguments", _first_message(error))
            )
        return run(self, arguments)

    # --- references (the built-in assistant) ---------------------------------------------

    def find_task(self, title: str) -> int | ToolResult:
        """A task's id by title: an exact (case-insensitive) match, else a unique partial one;
        a ``not_found`` or ``ambiguous`` error otherwise. A read: not a tool call."""
        wanted = title.casefold()
        tasks = service.list_tasks(self.session, user_id=self.user_id, limit=FIND_LIMIT)
        exact = [t for t in tasks if t.title.casefold() == wanted]
        partial = exact or [t for t in tasks if wanted in t.title.casefold()]
        if len(partial) == 1:
            return stored_id(partial[0].id)
        if not partial:
            return tool_error("not_found", f"No task matches “{title}”.")
        return tool_error(
            "ambiguous",
            f"Several tasks match “{title}”.",
            candidates=[task_json(t) for t in partial[:10]],
        )


def _finite(number: str) -> float:
    value = float(number)
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_storable(value: Any) -> None:
    if isinstance(value, str):
        if not is_storable(value):
            raise ValueError("NUL or a lone surrogate")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_storable(key)
            _check_storable(item)
    elif isinstance(value, list):
        for item in value:
            _check_storable(item)


def _parse_arguments(raw: str | None) -> Any:
    """A model's arguments as strict JSON that PostgreSQL can store (they are recorded with the
    call even when refused): NaN, Infinity, a number out of float's range, NUL or a lone
    surrogate anywhere make them invalid (ValueError)."""
    if not raw or not raw.strip():
        return {}
    parsed = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    _check_storable(parsed)
    return parsed


def _read_arguments(raw: str | None) -> dict[str, Any] | str:
    """A model's arguments as a JSON object, or the message saying why they are refused: longer
    than :data:`ARGUMENTS_MAX_CHARS` (not even parsed), not JSON PostgreSQL can store, or not an
    object."""
    if raw is not None and len(raw) > ARGUMENTS_MAX_CHARS:
        return f"The arguments are longer than {ARGUMENTS_MAX_CHARS} characters."
    try:
        parsed = _parse_arguments(raw)
    except ValueError:
        return "The arguments are not valid JSON."
    if not isinstance(parsed, dict):
        return "The arguments must be a JSON object."
    return parsed


def _no_task(task_id: int) -> ToolResult:
    return tool_error("not_found", f"No task {task_id}.")


def _run_add(tools: TaskTools, arguments: BaseModel) -> ToolResult:
    assert isinstance(arguments, AddTaskArguments)  # noqa: S101  (paired in _DISPATCH)
    return tools.add_task(title=arguments.title, description=arguments.description)


def _run_list(tools: TaskTools, arguments: BaseModel) -> ToolResult:
    assert isinstance(arguments, ListTasksArguments)  # noqa: S101
    return tools.list_tasks(status=arguments.status)


def _run_complete(tools: TaskTools, arguments: BaseModel) -> ToolResult:
    assert isinstance(arguments, TaskIdArguments)  # noqa: S101
    return tools.complete_task(task_id=arguments.task_id)


def _run_reopen(tools: TaskTools, arguments: BaseModel) -> ToolResult:
    assert isinstance(arguments, TaskIdArguments)  # noqa: S101
    return tools.reopen_task(task_id=arguments.task_id)


def _run_delete(tools: TaskTools, arguments: BaseModel) -> ToolResult:
    assert isinstance(arguments, TaskIdArguments)  # noqa: S101
    return tools.delete_task(task_id=arguments.task_id)


def _run_update(tools: TaskTools, arguments: BaseModel) -> ToolResult:
    assert isinstance(arguments, UpdateTaskArguments)  # noqa: S101
    return tools.update_task(
        task_id=arguments.task_id, title=arguments.title, description=arguments.description
    )


_DISPATCH: dict[str, tuple[type[BaseModel], Callable[[TaskTools, BaseModel], ToolResult]]] = {
    "add_task": (AddTaskArguments, _run_add),
    "list_tasks": (ListTasksArguments, _run_list),
    "complete_task": (TaskIdArguments, _run_complete),
    "reopen_task": (TaskIdArguments, _run_reopen),
    "delete_task": (TaskIdArguments, _run_delete),
    "update_task": (UpdateTaskArguments, _run_update),
}
