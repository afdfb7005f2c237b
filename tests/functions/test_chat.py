"""POST /api/{user_id}/chat through the real chat function, on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable

import psycopg
import pytest

from tests.api_client import ApiClient, Response
from todo_core.chat import assistant as assistant_module
from todo_core.chat.tools import TaskTools
from todo_core.chat.types import AssistantReply

Send = Callable[..., Response]


def _messages(direct_url: str, conversation_id: int) -> list[tuple[int, str, str, int | None]]:
    with psycopg.connect(direct_url) as connection:
        rows = connection.execute(
            "SELECT id, role, content, reply_to_id FROM message WHERE conversation_id = %s"
            " ORDER BY coalesce(reply_to_id, id), id",
            (conversation_id,),
        ).fetchall()
    return rows


def test_chat_new_conversation_stores_both_messages(
    send_chat: Send, alice: str, direct_url: str
) -> None:
    response = send_chat(alice, "add buy milk")
    assert response.status == 200
    assert response.function == "ChatFunction"
    body = response.json()
    assert set(body) == {"conversation_id", "response", "tool_calls"}
    assert body["response"].startswith("Added “buy milk”")
    [call] = body["tool_calls"]
    assert call["name"] == "add_task"
    assert call["arguments"] == {"title": "buy milk"}
    assert call["result"]["task"]["title"] == "buy milk"
    stored = _messages(direct_url, body["conversation_id"])
    assert [(role, content) for _, role, content, _ in stored] == [
        ("user", "add buy milk"),
        ("assistant", body["response"]),
    ]
    assert stored[1][3] == stored[0][0]  # the reply points at its question


def test_chat_body_is_the_json_fastapi_would_render(send_chat: Send, alice: str) -> None:
    # The route serialises its response itself (JSONBody): the body must stay what FastAPI's
    # JSONResponse made of the same content (compact, non-ASCII as UTF-8), byte for byte.
    response = send_chat(alice, "add café “crème” ✓")
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["tool_calls"][0]["result"]["task"]["title"] == "café “crème” ✓"
    rendered = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    assert response.body == rendered.encode()
    assert list(body) == ["conversation_id", "response", "tool_calls"]


def test_chat_new_conversation_is_titled_from_first_message(
    api: ApiClient, send_chat: Send, alice: str, token_for: Callable[..., str]
) -> None:
    long_message = "add " + "very long title words " * 10
    send_chat(alice, long_message)
    [conversation] = api.get(f"/api/{alice}/conversations", token=token_for(alice)).json()["items"]
    assert conversation["title"].startswith("add very long title words")
    assert len(conversation["title"]) <= 61
    assert conversation["title"].endswith("…")


def test_chat_continues_a_conversation_with_its_history(send_chat: Send, alice: str) -> None:
    first = send_chat(alice, "add water the plants").json()
    second = send_chat(alice, "complete it", first["conversation_id"]).json()
    assert second["conversation_id"] == first["conversation_id"]
    [call] = second["tool_calls"]
    assert call["name"] == "complete_task"
    assert call["arguments"] == {"task_id": first["tool_calls"][0]["result"]["task"]["id"]}
    assert call["result"]["task"]["completed"] is True


def test_chat_understands_nothing_without_a_tool_call(send_chat: Send, alice: str) -> None:
    body = send_chat(alice, "what's the weather like?").json()
    assert body["tool_calls"] == []
    assert "I can manage your tasks" in body["response"]


def test_chat_foreign_conversation_is_404_like_a_missing_one(
    send_chat: Send, alice: str, bob: str, direct_url: str
) -> None:
    conversation_id = send_chat(alice, "add secret plan").json()["conversation_id"]
    foreign = send_chat(bob, "list my tasks", conversation_id)
    missing = send_chat(bob, "list my tasks", 10**12)
    assert foreign.status == missing.status == 404
    assert foreign.body == missing.body
    assert len(_messages(direct_url, conversation_id)) == 2  # nothing stored in alice's


def test_chat_tool_calls_reach_only_own_tasks(
    api: ApiClient,
    send_chat: Send,
    alice: str,
    bob: str,
    token_for: Callable[..., str],
    make_task: Callable[..., dict],
) -> None:
    task = make_task(alice, "alice's task")
    body = send_chat(bob, f"delete task {task['id']}").json()
    assert body["tool_calls"][0]["result"]["error"] == "not_found"
    assert api.get(f"/api/{alice}/tasks/{task['id']}", token=token_for(alice)).status == 200
    listing = send_chat(bob, "list my tasks").json()
    assert listing["tool_calls"][0]["result"]["tasks"] == []


def test_chat_requires_a_token_and_the_right_user(
    api: ApiClient, alice: str, bob: str, token_for: Callable[..., str]
) -> None:
    assert api.post(f"/api/{alice}/chat", json_body={"message": "hi"}).status == 401
    response = api.post(f"/api/{alice}/chat", token=token_for(bob), json_body={"message": "hi"})
    assert response.status == 403


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({}, ["body", "message"]),
        ({"message": ""}, ["body", "message"]),
        ({"message": " \n\t "}, ["body", "message"]),
        ({"message": "x" * 4001}, ["body", "message"]),
        ({"message": "nul \u0000 inside"}, ["body", "message"]),
        ({"message": "bell \u0007"}, ["body", "message"]),
        ({"message": "\u0085"}, ["body", "message"]),  # NEL: C1, and whitespace to Python
        ({"message": "csi \u009b31m"}, ["body", "message"]),
        ({"message": "lone \udc00"}, ["body", "message"]),
        ({"message": "\u200b\n\u200d"}, ["body", "message"]),  # nothing visible
        ({"message": 42}, ["body", "message"]),
        ({"message": ["add milk"]}, ["body", "message"]),
        ({"message": "hi", "conversation_id": "abc"}, ["body", "conversation_id"]),
        ({"message": "hi", "conversation_id": "1"}, ["body", "conversation_id"]),
        ({"message": "hi", "conversation_id": True}, ["body", "conversation_id"]),
        ({"message": "hi", "conversation_id": 0}, ["body", "conversation_id"]),
        ({"message": "hi", "conversation_id": -5}, ["body", "conversation_id"]),
        ({"message": "hi", "conversation_id": 2**63}, ["body", "conversation_id"]),
        ({"message": "hi", "conversation_id": 1.5}, ["body", "conversation_id"]),
        ({"message": "hi", "extra": 1}, ["body", "extra"]),
        (["message"], ["body"]),
    ],
)
def test_chat_bad_input_is_422_and_stores_nothing(
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    direct_url: str,
    body: object,
    location: list[str],
) -> None:
    response = api.post(f"/api/{alice}/chat", token=token_for(alice), json_body=body)
    assert response.status == 422
    assert response.json()["detail"][0]["loc"] == location
    with psycopg.connect(direct_url) as connection:
        assert connection.execute("SELECT count(*) FROM message").fetchone() == (0,)


@pytest.mark.parametrize("message", ["", "   ", "\u3000\n"])
def test_chat_blank_message_error_counts_characters(
    api: ApiClient, alice: str, token_for: Callable[..., str], message: str
) -> None:
    body = {"message": message}
    response = api.post(f"/api/{alice}/chat", token=token_for(alice), json_body=body)
    assert response.status == 422
    [problem] = response.json()["detail"]
    assert (problem["type"], problem["msg"]) == (
        "string_too_short",
        "String should have at least 1 character",
    )


def test_chat_message_of_4000_characters_after_trimming_is_accepted(
    send_chat: Send, alice: str
) -> None:
    response = send_chat(alice, "  " + "y" * 4000 + "  ")
    assert response.status == 200


def test_chat_malformed_json_is_4xx(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    response = api.post(
        f"/api/{alice}/chat",
        token=token_for(alice),
        body=b'{"message": "add',
        headers={"content-type": "application/json"},
    )
    assert response.status == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


class _BrokenAssistant:
    def reply(self, history: object, message: str, *, user_id: str) -> AssistantReply:
        raise RuntimeError(f"model exploded on {message!r}")


@pytest.fixture
def broken_assistant(monkeypatch: pytest.MonkeyPatch) -> None:
    def factory(tools: TaskTools) -> _BrokenAssistant:
        return _BrokenAssistant()

    monkeypatch.setitem(assistant_module.ASSISTANTS, "builtin", factory)


@pytest.mark.usefixtures("broken_assistant")
def test_chat_failing_assistant_is_502_and_keeps_the_question(
    send_chat: Send, alice: str, direct_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = send_chat(alice, "add a private thing")
    assert response.status == 502
    assert "your message was saved" in response.json()["detail"]
    with psycopg.connect(direct_url) as connection:
        rows = connection.execute("SELECT role, content FROM message").fetchall()
    assert rows == [("user", "add a private thing")]
    assert "private thing" not in caplog.text


@pytest.mark.usefixtures("broken_assistant")
def test_chat_failing_assistant_is_counted_in_assistant_errors(
    send_chat: Send, alice: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert send_chat(alice, "add a thing").status == 502
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [line["AssistantErrors"] for line in emf if "AssistantErrors" in line] == [[1.0]]
    assert not [line for line in emf if "ChatTurns" in line]  # no turn was answered


def test_chat_finds_a_title_among_the_500_newest_and_lists_the_50_newest(
    send_chat: Send, alice: str, direct_url: str
) -> None:
    # README: a title is looked up among the 500 newest tasks (an older one is named by its
    # number); a listing holds the 50 newest.
    with psycopg.connect(direct_url, autocommit=True) as connection:
        [(oldest,)] = connection.execute(
            "INSERT INTO task (user_id, title, completed, created_at, updated_at)"
            " VALUES (%s, 'ancient chore', false, now(), now()) RETURNING id",
            (alice,),
        ).fetchall()
        connection.execute(
            "INSERT INTO task (user_id, title, completed, created_at, updated_at)"
            " SELECT %s, 'chore ' || n, false, now(), now() FROM generate_series(1, 500) AS n",
            (alice,),
        )
    by_title = send_chat(alice, "complete ancient chore").json()
    assert by_title["tool_calls"] == []  # the 501st newest: not found by its title
    assert "ancient chore" in by_title["response"]
    newest = send_chat(alice, "complete chore 500").json()
    [call] = newest["tool_calls"]
    assert call["result"]["task"]["title"] == "chore 500"
    by_number = send_chat(alice, f"complete task {oldest}").json()
    [call] = by_number["tool_calls"]
    assert call["result"]["task"]["title"] == "ancient chore"
    listing = send_chat(alice, "list my tasks").json()
    [call] = listing["tool_calls"]
    assert call["result"]["count"] == 50
    titles = [task["title"] for task in call["result"]["tasks"]]
    assert titles[0] == "chore 500"
    assert titles[-1] == "chore 451"
