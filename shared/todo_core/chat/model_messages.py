"""The stored conversation as a Chat Completions model reads it.

Each stored reply becomes an assistant message with its tool calls, one ``tool`` message per call
with the call's result, then the reply's text: a call is never separated from its result (a
provider answers 400 to a tool message without the call before it, or a call without its result).
The window is cut by whole turns (a question and its reply), newest kept, within a size budget;
it starts at a question, never at a reply.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import groupby
from typing import Any

from todo_core.chat.tool_steps import RecordedStep
from todo_core.chat.types import HistoryMessage, Role

ModelMessage = dict[str, Any]


def tool_call_id(message_id: int, index: int) -> str:
    """A stable id for a stored call: stored replies keep no provider ids, and none is needed."""
    return f"call_{message_id}_{index}"


def result_content(result: dict[str, Any]) -> str:
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"))


def assistant_tool_round(calls: Sequence[tuple[str, str, str]]) -> ModelMessage:
    """An assistant message asking for ``calls`` (id, name, arguments as JSON text)."""
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            for call_id, name, arguments in calls
        ],
    }


def tool_message(call_id: str, result: dict[str, Any]) -> ModelMessage:
    return {"role": "tool", "tool_call_id": call_id, "content": result_content(result)}


def replayed_rounds(question_id: int, steps: Sequence[RecordedStep]) -> list[ModelMessage]:
    """A retried turn's recorded tool calls, round by round, each with its result: the model
    continues after them instead of asking for them again."""
    messages: list[ModelMessage] = []
    for _, group in groupby(steps, key=lambda step: step.round):
        calls = [(f"call_{question_id}_s{step.step}", step) for step in group]
        messages.append(
            assistant_tool_round(
                [(call_id, step.name, json.dumps(step.arguments)) for call_id, step in calls]
            )
        )
        messages.extend(tool_message(call_id, step.result) for call_id, step in calls)
    return messages


def _reply_messages(message: HistoryMessage) -> list[ModelMessage]:
    calls = [c for c in message.tool_calls or [] if isinstance(c, dict) and c.get("name")]
    messages: list[ModelMessage] = []
    if calls:
        ids = [tool_call_id(message.id, index) for index in range(len(calls))]
        messages.append(
            assistant_tool_round(
                [
                    (call_id, str(call["name"]), json.dumps(call.get("arguments") or {}))
                    for call_id, call in zip(ids, calls, strict=True)
                ]
            )
        )
        messages.extend(
            tool_message(call_id, call.get("result") or {})
            for call_id, call in zip(ids, calls, strict=True)
        )
    messages.append({"role": "assistant", "content": message.content})
    return messages


def _turns(history: Sequence[HistoryMessage]) -> list[list[ModelMessage]]:
    """The history as turns (a question and what answered it), oldest first; replies whose
    question fell out of the window are dropped."""
    turns: list[list[ModelMessage]] = []
    for message in history:
        if message.role is Role.user:
            turns.append([{"role": "user", "content": message.content}])
        elif turns:
            turns[-1].extend(_reply_messages(message))
    return turns


def _size(messages: list[ModelMessage]) -> int:
    return sum(len(json.dumps(m, ensure_ascii=False)) for m in messages)


def history_messages(history: Sequence[HistoryMessage], *, budget_chars: int) -> list[ModelMessage]:
    """The model messages for ``history`` (oldest first): the newest whole turns whose size
    fits in ``budget_chars``."""
    kept: list[list[ModelMessage]] = []
    used = 0
    for turn in reversed(_turns(history)):
        size = _size(turn)
        if used + size > budget_chars:
            break
        kept.append(turn)
        used += size
    return [message for turn in reversed(kept) for message in turn]
