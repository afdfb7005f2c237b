"""Deletes racing the writes and reads that reference the deleted row, sent at once to three
local servers on one database (three Lambda containers): never a 5xx, never a stuck
Idempotency-Key, nothing lost, duplicated or brought back.

- task delete vs update / toggle / get of the same task;
- task delete vs a chat turn whose built-in assistant completes, renames or deletes that task;
- conversation delete vs reading its messages;
- conversation delete vs chat turns on it, keyed and not.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import psycopg
import pytest

from tests.api_client import ApiClient
from tests.devserver_process import running_server

ROUNDS = 12
TURN_ROUNDS = 20
"""The turn race has the narrowest window (the built-in assistant answers in a millisecond)."""
Call = tuple[str, str, Any, dict[str, str]]  # method, path, body, extra headers


@pytest.fixture(scope="module")
def instances(
    app_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    """Three local servers on the run's database (through PgBouncer when the run is)."""
    root = tmp_path_factory.mktemp("race-servers")
    with ExitStack() as stack:
        yield [
            stack.enter_context(running_server(app_environment, root / name, "--no-migrate"))
            for name in "abc"
        ]


def _send(base: str, token: str, call: Call) -> tuple[int, Any]:
    method, path, body, headers = call
    data = json.dumps(body).encode() if body is not None else None
    request = Request(f"{base}{path}", data=data, method=method)  # noqa: S310 (loopback)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urlopen(request, timeout=30) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def race(instances: list[str], token: str, calls: list[Call]) -> list[tuple[int, Any]]:
    """Send ``calls`` at once, the n-th to instance n (mod 3), each after a random delay of up
    to 20 ms so that every order, and every overlap, comes up over the rounds."""
    barrier = threading.Barrier(len(calls))
    jitter = [random.uniform(0, 0.02) for _ in calls]

    def one(n: int) -> tuple[int, Any]:
        barrier.wait(timeout=30)
        time.sleep(jitter[n])
        return _send(instances[n % len(instances)], token, calls[n])

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result(timeout=60) for f in [pool.submit(one, n) for n in range(len(calls))]]


def _count(direct_url: str, query: str, *parameters: Any) -> int:
    with psycopg.connect(direct_url) as connection:
        row = connection.execute(query, parameters).fetchone()
    assert row is not None
    return int(row[0])


def _no_5xx(results: list[tuple[int, Any]], calls: list[Call]) -> None:
    for (status, body), call in zip(results, calls, strict=True):
        assert status < 500, (call[:2], status, body)


@pytest.fixture
def user(alice: str, token_for: Callable[..., str], api: ApiClient) -> tuple[str, str]:
    return alice, token_for(alice)


def _new_task(api: ApiClient, user_id: str, token: str, title: str) -> int:
    response = api.post(f"/api/{user_id}/tasks", token=token, json_body={"title": title})
    assert response.status == 201, response.body
    return int(response.json()["id"])


def test_races_task_delete_vs_update_toggle_get(
    instances: list[str], user: tuple[str, str], api: ApiClient, direct_url: str
) -> None:
    user_id, token = user
    writes: list[Call] = [
        ("PUT", "/api/{u}/tasks/{t}", {"title": "renamed", "completed": True}, {}),
        ("PATCH", "/api/{u}/tasks/{t}/complete", None, {}),
        ("GET", "/api/{u}/tasks/{t}", None, {}),
    ]
    for round_number in range(ROUNDS):
        task_id = _new_task(api, user_id, token, f"race {round_number}")
        calls: list[Call] = [
            (m, p.format(u=user_id, t=task_id), b, h)
            for m, p, b, h in [("DELETE", "/api/{u}/tasks/{t}", None, {}), *writes]
        ]
        results = race(instances, token, calls)
        _no_5xx(results, calls)
        assert results[0][0] == 204, results[0]
        for status, body in results[1:]:
            assert status in (200, 404), (status, body)
        # Deleted for good: no write brought it back.
        assert _count(direct_url, "SELECT count(*) FROM task WHERE id = %s", task_id) == 0
    assert _count(direct_url, "SELECT count(*) FROM task WHERE user_id = %s", user_id) == 0


def test_races_task_delete_vs_chat_tool_calls(
    instances: list[str], user: tuple[str, str], api: ApiClient, direct_url: str
) -> None:
    user_id, token = user
    conversation = api.post(
        f"/api/{user_id}/chat", token=token, json_body={"message": "hello"}
    ).json()["conversation_id"]
    turns = 1
    for round_number in range(ROUNDS):
        task_id = _new_task(api, user_id, token, f"race {round_number}")
        message = ["complete task {t}", "delete task {t}", "rename task {t} to renamed"][
            round_number % 3
        ].format(t=task_id)
        chat: Call = (
            "POST",
            f"/api/{user_id}/chat",
            {"message": message, "conversation_id": conversation},
            {},
        )
        calls: list[Call] = [("DELETE", f"/api/{user_id}/tasks/{task_id}", None, {}), chat, chat]
        results = race(instances, token, calls)
        _no_5xx(results, calls)
        turns += 2
        deletions = int(results[0][0] == 204)
        for status, reply in results[1:]:
            assert status == 200, (message, status, reply)
            (tool_call,) = reply["tool_calls"]
            result = tool_call["result"]
            # Either it acted on the task, or it found no such task: never an error.
            assert "task" in result or "deleted" in result or result["error"] == "not_found", (
                message,
                reply,
            )
            deletions += int(result.get("status") == "deleted")
        assert results[0][0] in (204, 404), results[0]
        # Exactly one of the racing deletes (the route's, the assistant's) deleted it.
        assert deletions == 1 or (deletions == 0 and "delete" not in message), results
        assert _count(direct_url, "SELECT count(*) FROM task WHERE id = %s", task_id) == 0
    # Every turn stored its question and its answer, once.
    for role in ("user", "assistant"):
        stored = "SELECT count(*) FROM message WHERE user_id = %s AND role = %s"
        assert _count(direct_url, stored, user_id, role) == turns, role


def _new_conversation(api: ApiClient, user_id: str, token: str) -> int:
    first = api.post(f"/api/{user_id}/chat", token=token, json_body={"message": "hello"})
    assert first.status == 200, first.body
    conversation = int(first.json()["conversation_id"])
    second = api.post(
        f"/api/{user_id}/chat",
        token=token,
        json_body={"message": "help", "conversation_id": conversation},
    )
    assert second.status == 200, second.body
    return conversation


def test_races_conversation_delete_vs_list_messages(
    instances: list[str], user: tuple[str, str], api: ApiClient, direct_url: str
) -> None:
    user_id, token = user
    for _ in range(ROUNDS):
        conversation = _new_conversation(api, user_id, token)
        base = f"/api/{user_id}/conversations/{conversation}"
        calls: list[Call] = [
            ("DELETE", base, None, {}),
            ("GET", f"{base}/messages", None, {}),
            ("GET", f"{base}/messages?limit=1", None, {}),
        ]
        results = race(instances, token, calls)
        _no_5xx(results, calls)
        assert results[0][0] == 204, results[0]
        for status, body in results[1:]:
            assert status in (200, 404), (status, body)
            if status == 200:
                assert body["items"], body  # a page of what was there, not a torn one
        assert (
            _count(
                direct_url, "SELECT count(*) FROM message WHERE conversation_id = %s", conversation
            )
            == 0
        )


def test_races_conversation_delete_vs_turn(
    instances: list[str], user: tuple[str, str], api: ApiClient, direct_url: str
) -> None:
    """Turns, keyed and not, on a conversation deleted while they run: each answers 200 or 404,
    and a keyed turn's retry answers at once (its stored reply, or 404), never a stuck 409."""
    user_id, token = user
    for round_number in range(TURN_ROUNDS):
        conversation = _new_conversation(api, user_id, token)
        body = {"message": "list my tasks", "conversation_id": conversation}
        key = {"Idempotency-Key": f"race-turn-{round_number}"}
        calls: list[Call] = [
            ("DELETE", f"/api/{user_id}/conversations/{conversation}", None, {}),
            ("POST", f"/api/{user_id}/chat", body, {}),
            ("POST", f"/api/{user_id}/chat", body, key),
        ]
        results = race(instances, token, calls)
        _no_5xx(results, calls)
        assert results[0][0] == 204, results[0]
        for status, reply in results[1:]:
            assert status in (200, 404), (status, reply)
        started = time.monotonic()
        retry = _send(instances[round_number % 3], token, calls[2])
        assert retry[0] == results[2][0], (results[2], retry)
        assert time.monotonic() - started < 3, "the keyed retry waited on a lease"
        assert (
            _count(
                direct_url, "SELECT count(*) FROM message WHERE conversation_id = %s", conversation
            )
            == 0
        )
