"""Deleting a conversation while chat turns run on it: every turn answers 200 or 404 (never a
500, never a 409 that lasts), a keyed turn's retry answers at once, and nothing is left
half-written (no message of the deleted conversation, no key left unanswered)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from tests.api_client import ApiClient, Response
from tests.devserver_process import call, post_raw
from tests.polling import wait_for_lock_waiters
from todo_core.chat import assistant as assistant_module
from todo_core.chat.types import AssistantReply

NOT_FOUND = {"detail": "Conversation not found"}


def _turn(
    api: ApiClient, user: str, token: str, conversation: int, key: str | None = None
) -> Response:
    headers = {"Idempotency-Key": key} if key is not None else None
    return api.post(
        f"/api/{user}/chat",
        token=token,
        json_body={"message": "list my tasks", "conversation_id": conversation},
        headers=headers,
    )


def _unanswered_keys(direct_url: str) -> int:
    with psycopg.connect(direct_url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM idempotency_key WHERE response IS NULL"
        ).fetchone()
    assert row is not None
    return int(row[0])


def _messages_of(direct_url: str, conversation: int) -> int:
    with psycopg.connect(direct_url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM message WHERE conversation_id = %s", (conversation,)
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def conversation(alice: str, send_chat: Callable[..., Response]) -> int:
    """Alice's conversation, one turn in."""
    return int(send_chat(alice, "hello").json()["conversation_id"])


def _assert_gone_and_nothing_half_written(
    api: ApiClient, alice: str, token: str, conversation: int, key: str | None, direct_url: str
) -> None:
    """The turn's conversation is gone with none of its messages and no key left unanswered;
    a keyed turn's retry is a 404 at once, not after a lease."""
    assert _messages_of(direct_url, conversation) == 0
    assert _unanswered_keys(direct_url) == 0
    if key is not None:
        started = time.monotonic()
        retry = _turn(api, alice, token, conversation, key)
        assert (retry.status, retry.json()) == (404, NOT_FOUND)
        assert time.monotonic() - started < 1


@pytest.mark.parametrize("key", [None, "turn-during-delete"])
def test_chat_turn_blocked_by_a_delete_that_commits_is_404(
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    direct_url: str,
    conversation: int,
    key: str | None,
) -> None:
    """The turn's statement sees the conversation, then the delete commits under it: the new
    message's foreign key finds nothing (PostgreSQL error 23503), which is a 404."""
    token = token_for(alice)
    results: list[Response] = []
    with psycopg.connect(direct_url) as deleting:
        deleting.execute("DELETE FROM conversation WHERE id = %s", (conversation,))  # not committed
        turn = threading.Thread(
            target=lambda: results.append(_turn(api, alice, token, conversation, key))
        )
        turn.start()
        wait_for_lock_waiters(direct_url)  # the turn's statement, blocked by the delete
        deleting.commit()
    turn.join(timeout=30)
    [response] = results
    assert (response.status, response.json()) == (404, NOT_FOUND)
    _assert_gone_and_nothing_half_written(api, alice, token, conversation, key, direct_url)


class _DeletingAssistant:
    """Deletes the conversation (as the user would from another tab) while it "thinks"."""

    def __init__(self, direct_url: str) -> None:
        self.direct_url = direct_url

    def reply(self, history: object, message: str, *, user_id: str) -> AssistantReply:
        with psycopg.connect(self.direct_url, autocommit=True) as connection:
            connection.execute("DELETE FROM conversation WHERE user_id = %s", (user_id,))
        return AssistantReply(text="done")


@pytest.mark.parametrize("key", [None, "turn-deleted-meanwhile"])
def test_chat_conversation_deleted_while_the_assistant_works_is_404(
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    direct_url: str,
    conversation: int,
    monkeypatch: pytest.MonkeyPatch,
    key: str | None,
) -> None:
    token = token_for(alice)
    monkeypatch.setitem(
        assistant_module.ASSISTANTS, "builtin", lambda tools: _DeletingAssistant(direct_url)
    )
    response = _turn(api, alice, token, conversation, key)
    assert (response.status, response.json()) == (404, NOT_FOUND)
    _assert_gone_and_nothing_half_written(api, alice, token, conversation, key, direct_url)


def _racing_turn(base: str, user: str, token: str, conversation: int, key: str | None) -> int:
    body = {"message": "list my tasks", "conversation_id": conversation}
    if key is None:
        return call("POST", f"{base}/api/{user}/chat", token=token, body=body)[0]
    return post_raw(f"{base}/api/{user}/chat", token=token, body=body, key=key)[0]


def test_chat_turns_racing_a_delete_across_instances_never_fail(
    three_instances: list[str], alice: str, token_for: Callable[..., str], direct_url: str
) -> None:
    """Several rounds: a conversation, then keyed and unkeyed turns on every instance at once
    with its deletion. Every answer is 200 or 404; every keyed retry answers 404 at once (the
    conversation is gone); no key is left unanswered; no message outlives its conversation."""
    token = token_for(alice)
    statuses: dict[int, int] = {}
    with ThreadPoolExecutor(max_workers=len(three_instances) * 2 + 1) as pool:
        for n in range(12):
            first = three_instances[n % len(three_instances)]
            status, _, opened = call(
                "POST", f"{first}/api/{alice}/chat", token=token, body={"message": "hello"}
            )
            assert status == 200, opened
            conversation: int = opened["conversation_id"]  # type: ignore[index]
            keys = [f"race-{n}-{i}" if i % 2 else None for i in range(len(three_instances) * 2)]
            turns = [
                pool.submit(_racing_turn, base, alice, token, conversation, key)
                for base, key in zip(three_instances * 2, keys, strict=True)
            ]
            delete = pool.submit(
                call, "DELETE", f"{first}/api/{alice}/conversations/{conversation}", token=token
            )
            answers: list[Any] = [turn.result(timeout=60) for turn in turns]
            assert delete.result(timeout=60)[0] == 204
            for status in answers:
                statuses[status] = statuses.get(status, 0) + 1
            assert set(answers) <= {200, 404}, answers
            for key in filter(None, keys):
                started = time.monotonic()
                retry = _racing_turn(first, alice, token, conversation, key)
                assert retry in {200, 404}
                assert time.monotonic() - started < 2  # no lease left to wait for
            assert _messages_of(direct_url, conversation) == 0
    assert _unanswered_keys(direct_url) == 0
    assert set(statuses) <= {200, 404}, statuses


def test_chat_keyed_retry_after_the_conversation_is_deleted_replays_its_answer(
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    conversation: int,
) -> None:
    """The key answers first: a retry of an answered turn replays it even though its
    conversation is gone since, and the key with another body is still a 422."""
    token = token_for(alice)
    first = _turn(api, alice, token, conversation, "answered-then-deleted")
    assert first.status == 200
    deleted = api.delete(f"/api/{alice}/conversations/{conversation}", token=token)
    assert deleted.status == 204
    retry = _turn(api, alice, token, conversation, "answered-then-deleted")
    assert (retry.status, retry.body) == (200, first.body)
    other = api.post(
        f"/api/{alice}/chat",
        token=token,
        json_body={"message": "something else", "conversation_id": conversation},
        headers={"Idempotency-Key": "answered-then-deleted"},
    )
    assert other.status == 422
