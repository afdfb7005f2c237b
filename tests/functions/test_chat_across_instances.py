"""The chat is stateless: separate server processes (like separate Lambda containers) share
nothing but the database, and serve the turns of one conversation in any order, even at once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.devserver_process import call, running_server


@pytest.fixture
def two_instances(
    app_environment: dict[str, str], tmp_path: Path, api: object
) -> Iterator[tuple[str, str]]:
    with ExitStack() as stack:
        first = stack.enter_context(running_server(app_environment, tmp_path / "a", "--no-migrate"))
        second = stack.enter_context(
            running_server(app_environment, tmp_path / "b", "--no-migrate")
        )
        yield first, second


def _chat(base: str, user: str, token: str, message: str, conversation: int | None) -> Any:
    body: dict[str, Any] = {"message": message}
    if conversation is not None:
        body["conversation_id"] = conversation
    status, _, reply = call("POST", f"{base}/api/{user}/chat", token=token, body=body)
    assert status == 200, reply
    return reply


def test_chat_turns_alternating_between_instances_resolve_it_from_history(
    two_instances: tuple[str, str], alice: str, token_for: Callable[..., str]
) -> None:
    a, b = two_instances
    token = token_for(alice)
    added = _chat(a, alice, token, "add buy milk", None)
    conversation = added["conversation_id"]
    task_id = added["tool_calls"][0]["result"]["task"]["id"]
    completed = _chat(b, alice, token, "complete it", conversation)
    assert completed["tool_calls"][0]["result"]["task"] == {
        **completed["tool_calls"][0]["result"]["task"],
        "id": task_id,
        "completed": True,
    }
    deleted = _chat(a, alice, token, "delete that one", conversation)
    assert deleted["tool_calls"][0]["result"]["task"]["id"] == task_id


def test_chat_concurrent_turns_on_one_conversation_all_land_in_order(
    two_instances: tuple[str, str], alice: str, token_for: Callable[..., str], direct_url: str
) -> None:
    a, b = two_instances
    token = token_for(alice)
    conversation = _chat(a, alice, token, "hello", None)["conversation_id"]
    rounds = 10
    with ThreadPoolExecutor(max_workers=2) as pool:
        for n in range(rounds):
            futures = [
                pool.submit(_chat, a, alice, token, f"add a{n}", conversation),
                pool.submit(_chat, b, alice, token, f"add b{n}", conversation),
            ]
            for future in futures:
                future.result(timeout=30)
    with psycopg.connect(direct_url) as connection:
        rows = connection.execute(
            "SELECT id, role, content, reply_to_id FROM message WHERE conversation_id = %s"
            " ORDER BY coalesce(reply_to_id, id), id",
            (conversation,),
        ).fetchall()
        titles = [
            r[0] for r in connection.execute("SELECT title FROM task WHERE user_id = %s", (alice,))
        ]
    assert len(rows) == 2 * (1 + 2 * rounds)
    # In turn order, every question is followed by exactly its own reply.
    for question, reply in zip(rows[::2], rows[1::2], strict=True):
        assert question[1] == "user"
        assert reply[1] == "assistant"
        assert reply[3] == question[0]
        if question[2].startswith("add "):
            assert question[2][4:] in reply[2]
    asked = sorted(r[2][4:] for r in rows if r[1] == "user" and r[2].startswith("add "))
    assert asked == sorted(titles)
    assert len(titles) == 2 * rounds


def test_chat_many_turns_on_many_conversations_at_once(
    two_instances: tuple[str, str],
    alice: str,
    bob: str,
    token_for: Callable[..., str],
    direct_url: str,
) -> None:
    users = {alice: token_for(alice), bob: token_for(bob)}
    conversations = [
        (user, _chat(two_instances[n % 2], user, token, "hello", None)["conversation_id"])
        for n, (user, token) in enumerate(list(users.items()) * 2)
    ]
    turns_each = 6
    jobs = [
        (two_instances[(n + k) % 2], user, users[user], f"add {user[:4]}-{cid}-{k}", cid)
        for n, (user, cid) in enumerate(conversations)
        for k in range(turns_each)
    ]
    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(pool.map(lambda job: _chat(*job), jobs, timeout=120))
    assert len(replies) == len(jobs)
    with psycopg.connect(direct_url) as connection:
        for user, cid in conversations:
            rows = connection.execute(
                "SELECT id, role, content, reply_to_id, user_id FROM message"
                " WHERE conversation_id = %s ORDER BY coalesce(reply_to_id, id), id",
                (cid,),
            ).fetchall()
            assert len(rows) == 2 * (1 + turns_each)
            assert {row[4] for row in rows} == {user}
            for question, reply in zip(rows[::2], rows[1::2], strict=True):
                assert (question[1], reply[1], reply[3]) == ("user", "assistant", question[0])
            asked = sorted(r[2] for r in rows if r[1] == "user" and r[2] != "hello")
            assert asked == sorted(f"add {user[:4]}-{cid}-{k}" for k in range(turns_each))
