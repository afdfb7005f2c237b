"""The built-in assistant's phrasings, driven through the real chat function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.api_client import ApiClient, Response

Send = Callable[..., Response]


@pytest.mark.parametrize(
    ("message", "title"),
    [
        ("add buy milk", "buy milk"),
        ("Add a task called Call mom", "Call mom"),
        ("please create a new task: pay rent", "pay rent"),
        ("remind me to water the plants", "water the plants"),
        ("add “file taxes” to my list", "file taxes"),
        ("new task: book dentist", "book dentist"),
        ("I need to renew my passport.", "renew my passport"),
    ],
)
def test_builtin_assistant_adds_tasks(
    send_chat: Send, alice: str, message: str, title: str
) -> None:
    [call] = send_chat(alice, message).json()["tool_calls"]
    assert call["name"] == "add_task"
    assert call["result"]["task"]["title"] == title


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("list my tasks", "all"),
        ("show me all my tasks", "all"),
        ("show pending tasks", "pending"),
        ("what's on my list?", "all"),
        ("what do I have to do?", "pending"),
        ("list completed tasks", "completed"),
        ("what have I completed?", "completed"),
        ("show my done tasks", "completed"),
    ],
)
def test_builtin_assistant_lists_tasks_by_status(
    send_chat: Send,
    alice: str,
    make_task: Callable[..., dict[str, Any]],
    api: ApiClient,
    token_for: Callable[..., str],
    message: str,
    status: str,
) -> None:
    done = make_task(alice, "done one")
    api.patch(f"/api/{alice}/tasks/{done['id']}/complete", token=token_for(alice))
    make_task(alice, "open one")
    body = send_chat(alice, message).json()
    [call] = body["tool_calls"]
    assert call["name"] == "list_tasks"
    assert call["arguments"] == {"status": status}
    titles = [t["title"] for t in call["result"]["tasks"]]
    expected = {
        "all": ["open one", "done one"],
        "pending": ["open one"],
        "completed": ["done one"],
    }[status]
    assert titles == expected
    for title in expected:
        assert title in body["response"]


@pytest.mark.parametrize(
    "template",
    [
        "complete task {id}",
        "mark #{id} as done",
        "finish {id}",
        "mark buy milk as done",
        "complete Buy Milk",
        "buy milk is done",
        "I finished buy milk",
    ],
)
def test_builtin_assistant_completes_by_id_or_title(
    send_chat: Send, alice: str, make_task: Callable[..., dict[str, Any]], template: str
) -> None:
    task = make_task(alice, "buy milk")
    [call] = send_chat(alice, template.format(id=task["id"])).json()["tool_calls"]
    assert call["name"] == "complete_task"
    assert call["result"]["task"]["id"] == task["id"]
    assert call["result"]["task"]["completed"] is True


def test_builtin_assistant_reopens_deletes_renames_and_describes(
    send_chat: Send, alice: str, make_task: Callable[..., dict[str, Any]]
) -> None:
    task = make_task(alice, "draft report")
    tid = task["id"]
    conversation = send_chat(alice, f"complete task {tid}").json()["conversation_id"]

    def act(message: str) -> dict[str, Any]:
        body = send_chat(alice, message, conversation).json()
        [call] = body["tool_calls"]
        return call

    reopened = act("mark it as not done")
    assert (reopened["name"], reopened["result"]["task"]["completed"]) == ("reopen_task", False)
    renamed = act(f"rename task {tid} to final report")
    assert (renamed["name"], renamed["result"]["task"]["title"]) == ("update_task", "final report")
    described = act("set the description of it to due friday")
    assert described["result"]["task"]["description"] == "due friday"
    deleted = act("delete that one")
    assert (deleted["name"], deleted["result"]["task"]["id"]) == ("delete_task", tid)
    gone = act("delete it")
    assert gone["result"]["error"] == "not_found"


def test_builtin_assistant_resolves_it_from_the_stored_history(send_chat: Send, alice: str) -> None:
    conversation = send_chat(alice, "add first thing").json()["conversation_id"]
    second = send_chat(alice, "add second thing", conversation).json()
    second_id = second["tool_calls"][0]["result"]["task"]["id"]
    send_chat(alice, "what's the weather?", conversation)  # no tool call in between
    [call] = send_chat(alice, "complete it", conversation).json()["tool_calls"]
    assert call["arguments"] == {"task_id": second_id}


def test_builtin_assistant_asks_which_task_without_context(send_chat: Send, alice: str) -> None:
    body = send_chat(alice, "complete it").json()
    assert body["tool_calls"] == []
    assert "Which task" in body["response"]


def test_builtin_assistant_reports_ambiguous_titles(
    send_chat: Send, alice: str, make_task: Callable[..., dict[str, Any]]
) -> None:
    make_task(alice, "call mom")
    make_task(alice, "call dad")
    body = send_chat(alice, "complete call").json()
    assert body["tool_calls"] == []  # looking a title up is a read, not a tool call
    assert "call mom" in body["response"]
    assert "call dad" in body["response"]


def test_builtin_assistant_refuses_an_invalid_title(send_chat: Send, alice: str) -> None:
    body = send_chat(alice, "add " + "x" * 300).json()
    [call] = body["tool_calls"]
    assert call["result"]["error"] == "invalid"
    assert "couldn't add" in body["response"]


@pytest.mark.parametrize("message", ["help", "what can you do?", "hello"])
def test_builtin_assistant_help(send_chat: Send, alice: str, message: str) -> None:
    body = send_chat(alice, message).json()
    assert body["tool_calls"] == []
    assert "add buy milk" in body["response"]
