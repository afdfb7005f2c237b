"""Every timestamp the API returns is in UTC ("...Z"), whatever the database session's TimeZone:
psycopg returns a timestamptz in the session's zone, and to_jsonb / json_build_object write it
with that zone's offset. The functions here connect with a session TimeZone of
America/St_Johns (UTC-03:30 or -02:30), a libpq startup option, so always on the direct URL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.api_client import ApiClient, Response
from tests.conftest import functions_environment
from tests.functions.test_chat_durable import _crash_once_after_a_tool_write
from todo_core.db import get_engine

Send = Callable[..., Response]
ZONE = "America/St_Johns"


@pytest.fixture
def st_johns_session(api: ApiClient, direct_url: str) -> Iterator[None]:
    """The functions' sessions run with TimeZone=America/St_Johns (``api`` cleans up after)."""
    url = make_url(direct_url).update_query_dict({"options": f"-c TimeZone={ZONE}"})
    with functions_environment({"DATABASE_URL": url.render_as_string(hide_password=False)}):
        with get_engine().connect() as connection:
            assert connection.execute(text("SHOW TimeZone")).scalar_one() == ZONE
        yield


def _stored(direct_url: str, table: str, row_id: object) -> dict[str, datetime]:
    """The row's timestamps as stored (aware datetimes: compared as instants)."""
    columns = "created_at" if table == "message" else "created_at, updated_at"
    with psycopg.connect(direct_url, row_factory=dict_row) as connection:
        row = connection.execute(
            f"SELECT {columns} FROM {table} WHERE id = %s",  # noqa: S608  (constant names)
            (row_id,),
        ).fetchone()
    assert row is not None, (table, row_id)
    return row


def _assert_utc(body: dict[str, Any], stored: dict[str, datetime]) -> None:
    """``body``'s timestamps are the stored instants, written in UTC."""
    assert stored
    for name, instant in stored.items():
        assert body[name].endswith("Z"), (name, body[name])
        assert datetime.fromisoformat(body[name]) == instant, (name, body[name], instant)


def _timestamps(value: Any) -> list[str]:
    """Every ``*_at`` value anywhere in a JSON document."""
    if isinstance(value, dict):
        own = [v for k, v in value.items() if k.endswith("_at") and isinstance(v, str)]
        return own + [t for v in value.values() for t in _timestamps(v)]
    if isinstance(value, list):
        return [t for v in value for t in _timestamps(v)]
    return []


def _task_results(response: Response, direct_url: str) -> list[dict[str, Any]]:
    """The tasks in a chat reply's tool results, each checked against its stored row."""
    assert response.status == 200, response.body
    tasks: list[dict[str, Any]] = []
    for call in response.json()["tool_calls"]:
        result = call["result"]
        listed = result["tasks"] if "tasks" in result else [result["task"]]
        for task in listed:
            _assert_utc(task, _stored(direct_url, "task", task["id"]))
            tasks.append(task)
    assert tasks
    return tasks


@pytest.mark.usefixtures("st_johns_session")
def test_timestamps_of_tasks_are_utc_whatever_the_session_time_zone(
    api: ApiClient, alice: str, token_for: Callable[..., str], direct_url: str
) -> None:
    token = token_for(alice)
    tasks = f"/api/{alice}/tasks"

    created = api.post(tasks, token=token, json_body={"title": "plain"})
    assert created.status == 201, created.body
    _assert_utc(created.json(), _stored(direct_url, "task", created.json()["id"]))

    # Keyed: the response is built by json_build_object in SQL, stored, and replayed.
    keyed_request = {"json_body": {"title": "keyed"}, "headers": {"idempotency-key": "utc-1"}}
    keyed = api.post(tasks, token=token, **keyed_request)
    assert keyed.status == 201, keyed.body
    task_id = keyed.json()["id"]
    _assert_utc(keyed.json(), _stored(direct_url, "task", task_id))
    replayed = api.post(tasks, token=token, **keyed_request)
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert replayed.body == keyed.body
    read = api.get(f"{tasks}/{task_id}", token=token)
    assert read.status == 200
    assert read.body == keyed.body

    updated = api.put(f"{tasks}/{task_id}", token=token, json_body={"title": "renamed"})
    assert updated.status == 200, updated.body
    _assert_utc(updated.json(), _stored(direct_url, "task", task_id))
    toggled = api.patch(f"{tasks}/{task_id}/complete", token=token)
    assert toggled.status == 200, toggled.body
    _assert_utc(toggled.json(), _stored(direct_url, "task", task_id))

    listed = api.get(tasks, token=token)
    assert listed.status == 200
    assert len(listed.json()) == 2
    for task in listed.json():
        _assert_utc(task, _stored(direct_url, "task", task["id"]))


@pytest.mark.usefixtures("st_johns_session")
def test_timestamps_of_chat_are_utc_whatever_the_session_time_zone(
    api: ApiClient,
    send_chat: Send,
    alice: str,
    token_for: Callable[..., str],
    direct_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A tool's write: the task's row comes back from a text() statement.
    first = send_chat(alice, "add buy milk")
    [added] = _task_results(first, direct_url)
    conversation_id = first.json()["conversation_id"]
    _task_results(send_chat(alice, f"complete {added['id']}", conversation_id), direct_url)
    _task_results(send_chat(alice, "list my tasks", conversation_id), direct_url)

    # A keyed turn, replayed from its stored response.
    keyed = send_chat(alice, "add bake bread", conversation_id, key="utc-chat-1")
    _task_results(keyed, direct_url)
    assert send_chat(alice, "add bake bread", conversation_id, key="utc-chat-1").body == keyed.body

    # A turn retried after its tool's write: the result is rebuilt from the step's to_jsonb.
    _crash_once_after_a_tool_write(monkeypatch)
    crashed = send_chat(alice, "add water plants", conversation_id, key="utc-chat-2")
    assert crashed.status == 502, crashed.body
    _task_results(
        send_chat(alice, "add water plants", conversation_id, key="utc-chat-2"), direct_url
    )

    token = token_for(alice)
    conversations = api.get(f"/api/{alice}/conversations", token=token)
    assert conversations.status == 200
    [conversation] = conversations.json()["items"]
    _assert_utc(conversation, _stored(direct_url, "conversation", conversation_id))

    messages = api.get(f"/api/{alice}/conversations/{conversation_id}/messages", token=token)
    assert messages.status == 200
    items = messages.json()["items"]
    assert len(items) == 10
    for message in items:
        _assert_utc(message, _stored(direct_url, "message", message["id"]))
    # The tool results stored with the replies, too.
    stamps = _timestamps(items)
    assert len(stamps) > len(items)
    assert all(stamp.endswith("Z") for stamp in stamps), stamps
