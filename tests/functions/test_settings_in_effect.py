"""The settings README documents as configurable change what the functions do: each test sets
one through the environment (as a deployment would: settings and engine start afresh) and sends
requests through the real handlers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import psycopg
import pytest

from tests.api_client import ApiClient, Response
from tests.conftest import functions_environment

Send = Callable[..., Response]
Token = Callable[..., str]


def _key_lifetimes(direct_url: str) -> list[timedelta]:
    with psycopg.connect(direct_url) as connection:
        rows = connection.execute(
            "SELECT expires_at - created_at FROM idempotency_key ORDER BY created_at"
        ).fetchall()
    return [row[0] for row in rows]


@pytest.mark.usefixtures("app_environment")
def test_chat_max_message_chars_sets_the_longest_message(send_chat: Send, alice: str) -> None:
    with functions_environment({"CHAT_MAX_MESSAGE_CHARS": "10"}):
        assert send_chat(alice, "  " + "y" * 10 + "  ").status == 200  # after trimming
        refused = send_chat(alice, "y" * 11)
    assert refused.status == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "message"]
    assert "at most 10 characters" in refused.json()["detail"][0]["msg"]


@pytest.mark.parametrize(("window", "completed"), [("2", False), ("4", True)])
@pytest.mark.usefixtures("app_environment")
def test_chat_history_window_is_what_the_assistant_sees(
    send_chat: Send, alice: str, window: str, completed: bool
) -> None:
    # "it" is the task the most recent tool call in the history acted on: with a window of
    # two messages the add's turn is out of sight behind the greeting's.
    with functions_environment({"CHAT_HISTORY_WINDOW": window}):
        conversation_id = send_chat(alice, "add buy milk").json()["conversation_id"]
        assert send_chat(alice, "hello there", conversation_id).json()["tool_calls"] == []
        reply = send_chat(alice, "complete it", conversation_id).json()
    names = [call["name"] for call in reply["tool_calls"]]
    assert (names == ["complete_task"]) is completed, reply


@pytest.mark.usefixtures("app_environment")
def test_max_body_bytes_sets_the_largest_body(api: ApiClient, alice: str, token_for: Token) -> None:
    document = b'{"title": "at the limit"}'
    with functions_environment({"MAX_BODY_BYTES": "1000"}):
        statuses = [
            api.post(
                f"/api/{alice}/tasks",
                token=token_for(alice),
                body=document + b" " * (1000 - len(document) + extra),
                headers={"content-type": "application/json"},
            ).status
            for extra in (0, 1)
        ]
    assert statuses == [201, 413]


@pytest.mark.usefixtures("app_environment")
def test_idempotency_key_ttl_is_24_hours_by_default_and_configurable(
    api: ApiClient, send_chat: Send, alice: str, token_for: Token, direct_url: str
) -> None:
    def keyed_create(key: str) -> int:
        return api.post(
            f"/api/{alice}/tasks",
            token=token_for(alice),
            json_body={"title": "Buy milk"},
            headers={"idempotency-key": key},
        ).status

    assert keyed_create("default-task") == 201
    assert send_chat(alice, "hello", key="default-chat").status == 200
    with functions_environment({"IDEMPOTENCY_KEY_TTL_SECONDS": "120"}):
        assert keyed_create("short-task") == 201
        assert send_chat(alice, "hello", key="short-chat").status == 200
    day, two_minutes = timedelta(hours=24), timedelta(seconds=120)
    assert _key_lifetimes(direct_url) == [day, day, two_minutes, two_minutes]
