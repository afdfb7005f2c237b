"""The fake server's default answers: a tiny rule-based agent that drives the five task tools.

It reads the request's messages like a model would: a new user message becomes a tool call (or a
text answer), and tool results become a sentence. "It" / "that one" refer to the task of the last
tool result in the messages, so it only works if the history sent to the model keeps tool calls
and their results.
"""

from __future__ import annotations

import json
import re
from typing import Any

ToolCall = tuple[str, dict[str, Any]]

HELP = "I can add, list, complete, rename and delete your tasks."
_ADD = re.compile(
    r"^(?:please\s+)?(?:add|create|remind me to)\s+(?:a\s+task\s+)?(?P<title>.+)$", re.I
)
_LIST = re.compile(r"^(?:please\s+)?(?:list|show)\b(?P<rest>.*)$", re.I)
_COMPLETE = re.compile(
    r"^(?:please\s+)?(?:complete|finish|mark)\s+(?P<ref>.+?)(?:\s+(?:as\s+)?done)?$", re.I
)
_DELETE = re.compile(r"^(?:please\s+)?(?:delete|remove)\s+(?P<ref>.+)$", re.I)
_RENAME = re.compile(r"^(?:please\s+)?rename\s+(?P<ref>.+?)\s+to\s+(?P<title>.+)$", re.I)
_TASK_NUMBER = re.compile(r"^(?:task\s*)?#?(?P<id>\d+)$", re.I)
_PRONOUNS = {"it", "that", "that one", "this one", "the task", "the last one"}


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def _last_task_id(messages: list[dict[str, Any]]) -> int | None:
    for message in reversed(messages):
        if message.get("role") != "tool":
            continue
        try:
            result = json.loads(_text(message))
        except ValueError:
            continue
        if isinstance(result, dict) and isinstance(result.get("task_id"), int):
            return int(result["task_id"])
        tasks = result.get("tasks") if isinstance(result, dict) else None
        if isinstance(tasks, list) and len(tasks) == 1:
            return int(tasks[0]["id"])
    return None


def _reference(raw: str, messages: list[dict[str, Any]]) -> int | None:
    phrase = raw.strip().strip("\"'“”").lower()
    if phrase in _PRONOUNS:
        return _last_task_id(messages)
    number = _TASK_NUMBER.match(phrase)
    return int(number["id"]) if number else None


def _summary(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"That did not work: {result.get('message', result['error'])}"
    status = result.get("status")
    if status == "listed":
        tasks = result.get("tasks", [])
        if not tasks:
            return "You have no tasks."
        lines = [f"{'✓' if t['completed'] else '○'} {t['title']} (task {t['id']})" for t in tasks]
        return "Your tasks:\n" + "\n".join(lines)
    return f"{str(status).capitalize()} “{result.get('title')}” (task {result.get('task_id')})."


def scripted_agent(  # noqa: PLR0911  (one return per kind of request reads best)
    messages: list[dict[str, Any]],
) -> tuple[str | None, list[ToolCall]]:
    """The answer to ``messages``: text, or tool calls to make (then text from their results)."""
    if not messages:
        return HELP, []
    last = messages[-1]
    if last.get("role") == "tool":
        results = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            try:
                results.append(json.loads(_text(message)))
            except ValueError:
                results.append({"error": "unreadable"})
        return " ".join(_summary(r) for r in reversed(results)), []
    text = " ".join(_text(last).split()).rstrip(".!")
    if match := _ADD.match(text):
        # "add a; b; c" asks for several tasks: one round of several tool calls.
        titles = [title.strip() for title in match["title"].split(";") if title.strip()]
        return None, [("add_task", {"title": title}) for title in titles]
    if match := _LIST.match(text):
        rest = match["rest"].lower()
        status = "pending" if "pending" in rest else "completed" if "complet" in rest else "all"
        return None, [("list_tasks", {"status": status})]
    if match := _RENAME.match(text):
        task_id = _reference(match["ref"], messages)
        if task_id is None:
            return "Which task? Give its number.", []
        return None, [("update_task", {"task_id": task_id, "title": match["title"]})]
    for pattern, tool in ((_COMPLETE, "complete_task"), (_DELETE, "delete_task")):
        if match := pattern.match(text):
            task_id = _reference(match["ref"], messages)
            if task_id is None:
                return "Which task? Give its number.", []
            return None, [(tool, {"task_id": task_id})]
    return HELP, []
