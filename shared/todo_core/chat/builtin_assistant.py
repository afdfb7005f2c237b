"""The built-in assistant: deterministic, no network, no model.

It understands plain requests about the user's tasks in a few phrasings each (add, list with a
status, complete, reopen, delete, rename, describe, help), carries them out through
:class:`~todo_core.chat.tools.TaskTools`, and answers in a sentence. "It", "that one" or "the last
one" refer to the task that the most recent tool call in the history acted on: the history comes
from the database, so this works whichever instance served the earlier turns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from todo_core.chat.tools import TaskTools
from todo_core.chat.types import AssistantReply, HistoryMessage
from todo_core.tasks.models import TaskStatus

HELP_TEXT = (
    "I can manage your tasks. Try:\n"
    "• “add buy milk” or “remind me to call mom”\n"
    "• “list my tasks”, “show pending tasks”, “what have I completed?”\n"
    "• “complete task 3”, “mark buy milk as done”, “complete it”\n"
    "• “reopen task 3”\n"
    "• “delete task 3” or “delete that one”\n"
    "• “rename task 3 to buy oat milk”, “set the description of it to 2 litres”"
)

_POLITE = r"(?:(?:please|pls|could you|can you|would you)\s+)?"
_PRONOUNS = {
    "it", "that", "this", "that one", "this one", "that task", "this task", "the task",
    "the last one", "the last task", "the one i just added", "the same one",
}  # fmt: skip
_ID_REFERENCE = re.compile(r"(?:the\s+)?(?:task\s*)?(?:number\s*|no\.?\s*|#)?(\d{1,18})")
_QUOTES = "\"'“”‘’«»`"


def _clean(text: str) -> str:
    return text.strip().strip(_QUOTES).strip()


def _pattern(regex: str) -> re.Pattern[str]:
    return re.compile(rf"^{_POLITE}{regex}$", re.IGNORECASE | re.DOTALL)


_HELP = _pattern(r"(?:help|what can you do|what do you do|commands|\?|hi|hello|hey)")
_ADD = [
    _pattern(r"remind me to\s+(?P<title>.+)"),
    _pattern(r"(?:add|create|make)\s+(?:a\s+)?(?:new\s+)?task\s*(?:called|named|titled|:|-)?\s*(?P<title>.+)"),
    _pattern(r"add\s+(?P<title>.+?)\s+to\s+(?:my\s+)?(?:list|tasks|to-?do(?:\s+list)?)"),
    _pattern(r"(?:add|new task)\s*:?\s+(?P<title>.+)"),
    _pattern(r"i (?:need|have|must|should) to\s+(?P<title>.+)"),
]  # fmt: skip
_LIST = [
    _pattern(r"(?:list|show|display|give me|see|view)(?:\s+me)?(?:\s+(?:all\s+)?(?:of\s+)?my)?\s*(?P<status>\w+)?\s*(?:tasks?|to-?dos?|list)"),
    _pattern(r"what(?:'s| is| are)(?: on)? my\s*(?P<status>\w+)?\s*(?:tasks?|to-?dos?|list)\??"),
    _pattern(r"what (?:do i have|have i got|is left|'s left) to do\??"),
    _pattern(r"what (?:have i|did i) (?P<status>completed|finished|done)\??"),
]  # fmt: skip
_REOPEN = [
    _pattern(r"(?:reopen|re-open|uncomplete|unmark|undo)\s+(?P<ref>.+)"),
    _pattern(r"mark\s+(?P<ref>.+?)\s+as\s+(?:not done|pending|incomplete|undone|open|not completed|todo|to do)"),
]  # fmt: skip
_COMPLETE = [
    _pattern(r"mark\s+(?P<ref>.+?)\s+(?:as\s+)?(?:done|complete|completed|finished)"),
    _pattern(r"(?:complete|finish|check off|tick off|close)\s+(?P<ref>.+)"),
    _pattern(r"i(?:'ve| have)?\s+(?:finished|completed|done)\s+(?P<ref>.+)"),
    _pattern(r"(?P<ref>.+?)\s+is\s+(?:done|complete|completed|finished)"),
]  # fmt: skip
_DELETE = [
    _pattern(r"(?:delete|remove|drop|cancel|get rid of|erase)\s+(?P<ref>.+?)(?:\s+from\s+(?:my\s+)?(?:list|tasks))?"),
]  # fmt: skip
_DESCRIBE = [
    _pattern(r"(?:set|change|update)\s+(?:the\s+)?description\s+(?:of|for)\s+(?P<ref>.+?)\s+to\s+(?P<description>.+)"),
    _pattern(r"describe\s+(?P<ref>.+?)\s+as\s+(?P<description>.+)"),
]  # fmt: skip
_RENAME = [
    _pattern(r"(?:rename|retitle)\s+(?P<ref>.+?)\s+(?:to|as)\s+(?P<title>.+)"),
    _pattern(r"(?:change|update)\s+(?:the\s+(?:title|name)\s+of\s+)?(?P<ref>.+?)\s+to\s+(?P<title>.+)"),
]  # fmt: skip

_STATUS_WORDS = {
    "pending": TaskStatus.pending, "open": TaskStatus.pending, "remaining": TaskStatus.pending,
    "incomplete": TaskStatus.pending, "unfinished": TaskStatus.pending, "todo": TaskStatus.pending,
    "outstanding": TaskStatus.pending, "current": TaskStatus.pending, "active": TaskStatus.pending,
    "completed": TaskStatus.completed, "complete": TaskStatus.completed,
    "done": TaskStatus.completed, "finished": TaskStatus.completed,
    "all": TaskStatus.all,
}  # fmt: skip


def _task_phrase(task: dict[str, Any]) -> str:
    return f"“{task['title']}” (task {task['id']})"


def _listing(tasks: list[dict[str, Any]], status: TaskStatus) -> str:
    label = {TaskStatus.all: "", TaskStatus.pending: "pending ", TaskStatus.completed: "completed "}
    if not tasks:
        return f"You have no {label[status]}tasks."
    noun = "task" if len(tasks) == 1 else "tasks"
    lines = [
        f"{n}. {'✓' if t['completed'] else '○'} {t['title']} (task {t['id']})"
        for n, t in enumerate(tasks, 1)
    ]
    return f"You have {len(tasks)} {label[status]}{noun}:\n" + "\n".join(lines)


def _failure(result: dict[str, Any]) -> str:
    message = str(result.get("message", "That did not work."))
    if result.get("error") == "ambiguous":
        options = "; ".join(_task_phrase(t) for t in result.get("candidates", []))
        return f"{message} Which one do you mean? {options}. You can use the task number."
    if result.get("error") == "not_found":
        return f"{message} Say “list my tasks” to see them."
    return message


class BuiltinAssistant:
    """Rule-based task assistant. Stateless: everything it knows comes from the history."""

    def __init__(self, tools: TaskTools) -> None:
        self.tools = tools

    def reply(
        self, history: Sequence[HistoryMessage], message: str, *, user_id: str
    ) -> AssistantReply:
        text = " ".join(message.split()).rstrip(".!")
        for handle in (
            self._help,
            self._describe,
            self._rename,
            self._add,
            self._list,
            self._reopen,
            self._complete,
            self._delete,
        ):
            answer = handle(text, history)
            if answer is not None:
                return AssistantReply(answer, list(self.tools.calls))
        return AssistantReply("Sorry, I didn't understand that. " + HELP_TEXT)

    # --- intents -------------------------------------------------------------------------

    def _help(self, text: str, history: Sequence[HistoryMessage]) -> str | None:
        return HELP_TEXT if _HELP.match(text) else None

    def _add(self, text: str, history: Sequence[HistoryMessage]) -> str | None:
        match = _first_match(_ADD, text)
        if match is None:
            return None
        result = self.tools.add_task(title=_clean(match["title"]))
        if "task" in result:
            return f"Added {_task_phrase(result['task'])}."
        return f"I couldn't add that task: {result['message']}"

    def _list(self, text: str, history: Sequence[HistoryMessage]) -> str | None:
        match = _first_match(_LIST, text)
        if match is None:
            return None
        word = (match.groupdict().get("status") or "").lower()
        if word and word not in _STATUS_WORDS and word not in {"my", "the"}:
            return None
        status = _STATUS_WORDS.get(word, TaskStatus.all)
        if "left to do" in text.lower() or "have to do" in text.lower():
            status = TaskStatus.pending
        result = self.tools.list_tasks(status=status)
        return _listing(result["tasks"], status)

    def _complete(self, text: str, history: Sequence[HistoryMessage]) -> str | None:
        return self._act_on_reference(
            _COMPLETE,
            text,
            history,
            lambda task_id: self.tools.complete_task(task_id=task_id),
            lambda task: f"Marked {_task_phrase(task)} as completed.",
        )

    def _reopen(self, text: str, history: Sequence[HistoryMessage]) -> str | None:
        return self._act_on_reference(
            _REOPEN,
            text,
            history,
            lambda task_id: self.tools.reopen_task(task_id=task_id),
            lambda task: f"Reopened {_task_phrase(task)}; it is pending again.",
        )

    def _delete(self, text: str, history: Sequence[HistoryMessage]) -> str | None:
        return self._act_on_reference(
            _DELETE,
            text,
            history,
            lambda task_id: self.tools.delete_task(task_id=task_id),
            lambda task: f"Deleted {_task_phrase(task)}.",
        )

    def _rename(self, text: str, history: Sequence[HistoryMessage]) -> str | None:
        match = _first_match(_RENAME, text)
        if match is None:
            return None
        title = _clean(match["title"])
        return self._act_on_reference(
            [],
            text,
            history,
            lambda task_id: self.tools.update_task(task_id=task_id, title=title),
            lambda task: f"Renamed it: now {_task_phrase(task)}.",
            match=match,
        )

    def _describe(self, text: str, history: Sequence[HistoryMessage]) -> str | None:
        match = _first_match(_DESCRIBE, text)
        if match is None:
            return None
        description = _clean(match["description"])
        return self._act_on_reference(
            [],
            text,
            history,
            lambda task_id: self.tools.update_task(task_id=task_id, description=description),
            lambda task: f"Updated the description of {_task_phrase(task)}.",
            match=match,
        )

    # --- references ----------------------------------------------------------------------

    def _act_on_reference(
        self,
        patterns: list[re.Pattern[str]],
        text: str,
        history: Sequence[HistoryMessage],
        act: Callable[[int], dict[str, Any]],
        describe: Callable[[dict[str, Any]], str],
        *,
        match: re.Match[str] | None = None,
    ) -> str | None:
        match = match or _first_match(patterns, text)
        if match is None:
            return None
        reference = _reference(match["ref"], history)
        if reference is None:
            return (
                "Which task do you mean? Give its number (say “list my tasks” to see them) "
                "or its title."
            )
        if isinstance(reference, str):
            # A title: look its id up first (a read, not a tool call), as a model would list.
            found = self.tools.find_task(reference)
            if isinstance(found, dict):
                return _failure(found)
            reference = found
        result = act(reference)
        if "task" in result:
            return describe(result["task"])
        return _failure(result)


def _first_match(patterns: list[re.Pattern[str]], text: str) -> re.Match[str] | None:
    for pattern in patterns:
        match = pattern.match(text)
        if match:
            return match
    return None


def _reference(raw: str, history: Sequence[HistoryMessage]) -> int | str | None:
    """A task id, a title to look up, or (for "it", "that one") the task last acted on."""
    phrase = _clean(raw)
    lowered = phrase.lower()
    if lowered in _PRONOUNS:
        return last_task_id(history)
    by_id = _ID_REFERENCE.fullmatch(lowered)
    if by_id:
        return int(by_id.group(1))
    for prefix in ("the task called ", "the task named ", "task called ", "the task ", "task "):
        if lowered.startswith(prefix):
            return _clean(phrase[len(prefix) :]) or None
    return phrase or None


def last_task_id(history: Sequence[HistoryMessage]) -> int | None:
    """The task the most recent tool call acted on (a list of exactly one counts too)."""
    for message in reversed(history):
        for call in reversed(message.tool_calls or []):
            result = call.get("result") or {}
            if isinstance(result.get("task_id"), int):
                return int(result["task_id"])
            for key in ("task", "deleted"):  # results stored before task_id existed
                task = result.get(key)
                if isinstance(task, dict) and isinstance(task.get("id"), int):
                    return int(task["id"])
            tasks = result.get("tasks")
            if isinstance(tasks, list) and len(tasks) == 1 and isinstance(tasks[0], dict):
                return int(tasks[0]["id"])
    return None
