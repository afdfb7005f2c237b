"""The stored window as the model reads it: calls kept with their results, whole turns, newest
first within the budget."""

from __future__ import annotations

import json
from typing import Any

from todo_core.chat.model_messages import history_messages, replayed_rounds
from todo_core.chat.tool_steps import RecordedStep
from todo_core.chat.types import HistoryMessage, Role


def _turn(question_id: int, text: str, calls: int = 0) -> list[HistoryMessage]:
    tool_calls: list[dict[str, Any]] = [
        {"name": "add_task", "arguments": {"title": f"{text} {n}"}, "result": {"task_id": n}}
        for n in range(calls)
    ]
    return [
        HistoryMessage(id=question_id, role=Role.user, content=text),
        HistoryMessage(
            id=question_id + 1, role=Role.assistant, content=f"done {text}", tool_calls=tool_calls
        ),
    ]


def _assert_no_orphans(messages: list[dict[str, Any]]) -> None:
    asked: set[str] = set()
    answered: set[str] = set()
    for message in messages:
        for call in message.get("tool_calls") or []:
            asked.add(call["id"])
        if message["role"] == "tool":
            assert message["tool_call_id"] in asked  # a result always follows its call
            answered.add(message["tool_call_id"])
    assert asked == answered  # and every call has its result


def test_model_messages_keep_each_call_with_its_result() -> None:
    history = _turn(1, "one", calls=2) + _turn(3, "two")
    messages = history_messages(history, budget_chars=100_000)
    assert [m["role"] for m in messages] == [
        "user", "assistant", "tool", "tool", "assistant", "user", "assistant",
    ]  # fmt: skip
    assert json.loads(messages[2]["content"]) == {"task_id": 0}
    _assert_no_orphans(messages)


def test_model_messages_window_cut_inside_a_turn_starts_at_a_question() -> None:
    # The stored window began with a reply whose question is older than the window.
    history = _turn(1, "one", calls=1)[1:] + _turn(3, "two", calls=1)
    messages = history_messages(history, budget_chars=100_000)
    assert messages[0] == {"role": "user", "content": "two"}
    _assert_no_orphans(messages)


def test_model_messages_budget_keeps_the_newest_whole_turns() -> None:
    history = [m for n in range(10) for m in _turn(10 * n + 1, f"turn{n}", calls=3)]
    everything = history_messages(history, budget_chars=1_000_000)
    size_of_one = len(json.dumps(everything[:6], ensure_ascii=False)) + 20
    messages = history_messages(history, budget_chars=size_of_one * 3)
    questions = [m["content"] for m in messages if m["role"] == "user"]
    assert questions == ["turn7", "turn8", "turn9"]
    _assert_no_orphans(messages)


def test_model_messages_replayed_rounds_regroup_recorded_steps() -> None:
    steps = [
        RecordedStep(step=0, round=0, name="add_task", arguments={"title": "a"}, result={"n": 0}),
        RecordedStep(step=1, round=0, name="add_task", arguments={"title": "b"}, result={"n": 1}),
        RecordedStep(step=3, round=1, name="delete_task", arguments={"task_id": 1}, result={}),
    ]
    messages = replayed_rounds(42, steps)
    assert [m["role"] for m in messages] == ["assistant", "tool", "tool", "assistant", "tool"]
    assert len(messages[0]["tool_calls"]) == 2
    _assert_no_orphans(messages)
