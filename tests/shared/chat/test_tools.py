"""The task tools as a model calls them: validated arguments, Phase III result shapes, and the
token's user only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlmodel import Session

from todo_core.chat.tools import TOOL_NAMES, TOOL_SCHEMAS, TaskTools
from todo_core.db import get_engine


@pytest.fixture
def session(api: object) -> Iterator[Session]:
    with Session(get_engine(), expire_on_commit=False, autoflush=False) as session:
        yield session


def test_tools_schemas_name_the_phase_three_tools_and_no_user_id() -> None:
    assert {"add_task", "list_tasks", "complete_task", "delete_task", "update_task"} <= TOOL_NAMES
    for schema in TOOL_SCHEMAS:
        parameters = schema["function"]["parameters"]
        assert "user_id" not in parameters["properties"]
        assert parameters["additionalProperties"] is False


def test_tools_results_carry_task_id_status_and_title(session: Session, alice: str) -> None:
    tools = TaskTools(session=session, user_id=alice)
    created = tools.call("add_task", '{"title": "buy milk", "description": "2 litres"}')
    task_id = created["task_id"]
    assert (created["status"], created["title"]) == ("created", "buy milk")
    assert created["task"]["description"] == "2 litres"
    listed = tools.call("list_tasks", '{"status": "pending"}')
    assert (listed["status"], listed["count"]) == ("listed", 1)
    updated = tools.call("update_task", f'{{"task_id": {task_id}, "title": "buy oat milk"}}')
    assert (updated["status"], updated["title"]) == ("updated", "buy oat milk")
    completed = tools.call("complete_task", f'{{"task_id": "{task_id}"}}')
    assert (completed["status"], completed["task"]["completed"]) == ("completed", True)
    deleted = tools.call("delete_task", f'{{"task_id": {task_id}.0}}')
    assert (deleted.get("task_id"), deleted.get("status")) == (task_id, "deleted"), deleted
    assert [call["name"] for call in tools.calls] == [
        "add_task", "list_tasks", "update_task", "complete_task", "delete_task",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "arguments", "error"),
    [
        ("add_task", "{not json", "invalid_arguments"),
        ("add_task", "[1, 2]", "invalid_arguments"),
        ("add_task", "{}", "invalid_arguments"),
        ("add_task", '{"title": "x", "user_id": "someone-else"}', "invalid_arguments"),
        ("add_task", '{"title": ""}', "invalid"),
        ("add_task", '{"title": "' + "x" * 300 + '"}', "invalid"),
        ("list_tasks", '{"status": "overdue"}', "invalid_arguments"),
        ("complete_task", '{"task_id": "three"}', "invalid_arguments"),
        ("complete_task", '{"task_id": true}', "invalid_arguments"),
        ("complete_task", '{"task_id": 0}', "invalid_arguments"),
        ("delete_task", '{"task_id": 123456789}', "not_found"),
        ("update_task", '{"task_id": 1}', "invalid"),
        ("drop_database", "{}", "unknown_tool"),
    ],
)
def test_tools_bad_calls_answer_a_tool_error(
    session: Session, alice: str, name: str, arguments: str, error: str
) -> None:
    tools = TaskTools(session=session, user_id=alice)
    result = tools.call(name, arguments)
    assert result["error"] == error, result
    assert result["message"]
    assert tools.calls[-1]["result"] == result
    assert tools.call("list_tasks", None)["count"] == 0  # nothing was created


def test_tools_act_for_their_user_only(session: Session, alice: str, bob: str) -> None:
    task_id = TaskTools(session=session, user_id=alice).call("add_task", '{"title": "a"}')[
        "task_id"
    ]
    bobs = TaskTools(session=session, user_id=bob)
    assert bobs.call("delete_task", f'{{"task_id": {task_id}}}')["error"] == "not_found"
    assert bobs.call("complete_task", f'{{"task_id": {task_id}}}')["error"] == "not_found"
    renamed = bobs.call("update_task", f'{{"task_id": {task_id}, "title": "bob was here"}}')
    assert renamed["error"] == "not_found"
    alices = TaskTools(session=session, user_id=alice)
    [task] = alices.call("list_tasks", "{}")["tasks"]
    assert (task["title"], task["completed"]) == ("a", False)


def test_tools_step_another_attempt_ran_first_is_replayed_not_run_again(
    session: Session, alice: str
) -> None:
    conversation_id = session.execute(
        text(
            "INSERT INTO conversation (user_id, title, created_at, updated_at)"
            " VALUES (:user_id, 'milk', now(), now()) RETURNING id"
        ),
        {"user_id": alice},
    ).scalar_one()
    question = session.execute(
        text(
            "INSERT INTO message (conversation_id, user_id, role, content, created_at)"
            " VALUES (:conversation_id, :user_id, 'user', 'add milk', now()) RETURNING id"
        ),
        {"conversation_id": conversation_id, "user_id": alice},
    ).scalar_one()
    session.commit()
    # Two attempts at one turn, both started before either recorded a step (a retry that took
    # over a turn whose first attempt was still running): each runs step 0.
    first = TaskTools(session=session, user_id=alice, user_message_id=question)
    second = TaskTools(session=session, user_id=alice, user_message_id=question)
    created = first.call("add_task", '{"title": "milk"}')
    assert second.call("add_task", '{"title": "milk"}') == created
    listed = TaskTools(session=session, user_id=alice).call("list_tasks", None)
    assert listed["count"] == 1  # the second attempt's insert went with its refused record
