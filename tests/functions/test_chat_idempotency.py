"""POST /api/{user_id}/chat with an Idempotency-Key: a retried turn stores one question and one
reply, whether it replays, waits for, or takes over the first attempt."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.api_client import Response
from tests.devserver_process import race_keyed_posts
from tests.wire_tap import WireTap
from todo_core.chat import assistant as assistant_module
from todo_core.chat import service as chat_service
from todo_core.chat.tools import TaskTools
from todo_core.chat.types import AssistantReply

KEY = "turn-5f1d2a9c"


@pytest.fixture
def chat(send_chat: Callable[..., Response]) -> Callable[..., Response]:
    """``send_chat`` with this file's Idempotency-Key unless ``key`` says otherwise."""
    return functools.partial(send_chat, key=KEY)


def _rows(direct_url: str, query: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(direct_url) as connection:
        return connection.execute(query, args).fetchall()


def _messages(direct_url: str) -> list[tuple[Any, ...]]:
    return _rows(
        direct_url,
        "SELECT id, conversation_id, role, content, reply_to_id FROM message"
        " ORDER BY coalesce(reply_to_id, id), id",
    )


def _execute(direct_url: str, statement: str) -> None:
    with psycopg.connect(direct_url, autocommit=True) as connection:
        connection.execute(statement)


def test_chat_retry_of_a_new_conversation_replays_the_reply(
    chat: Callable[..., Response], alice: str, direct_url: str
) -> None:
    first = chat(alice, "add buy milk")
    retry = chat(alice, "add buy milk")
    assert (first.status, retry.status) == (200, 200)
    assert retry.body == first.body
    assert _rows(direct_url, "SELECT count(*) FROM conversation") == [(1,)]
    assert _rows(direct_url, "SELECT count(*) FROM task") == [(1,)]  # the tool ran once
    [(question_id, _, _, _, _), (_, _, role, _, reply_to)] = _messages(direct_url)
    assert (role, reply_to) == ("assistant", question_id)


def test_chat_retry_in_a_conversation_stores_one_question_and_reply(
    chat: Callable[..., Response], alice: str, direct_url: str
) -> None:
    conversation = chat(alice, "hello", key=None).json()["conversation_id"]
    first = chat(alice, "add buy bread", conversation)
    retry = chat(alice, "add buy bread", conversation)
    assert (first.status, retry.status) == (200, 200)
    assert retry.body == first.body
    assert [m[2:4] for m in _messages(direct_url)][2:] == [
        ("user", "add buy bread"),
        ("assistant", first.json()["response"]),
    ]
    assert len(_messages(direct_url)) == 4


def test_chat_same_key_other_body_is_422_and_stores_nothing(
    chat: Callable[..., Response], alice: str, direct_url: str
) -> None:
    first = chat(alice, "add buy milk")
    for other in (
        chat(alice, "add buy bread"),
        chat(alice, "add buy milk", first.json()["conversation_id"]),
    ):
        assert other.status == 422
        assert other.json() == {
            "detail": "Idempotency-Key was already used with a different request"
        }
    assert len(_messages(direct_url)) == 2


def test_chat_same_key_for_another_user_is_independent(
    chat: Callable[..., Response], alice: str, bob: str, direct_url: str
) -> None:
    mine = chat(alice, "add buy milk")
    theirs = chat(bob, "add buy milk")
    assert (mine.status, theirs.status) == (200, 200)
    assert mine.json()["conversation_id"] != theirs.json()["conversation_id"]
    assert len(_messages(direct_url)) == 4
    # Each one's retry replays their own reply, never the other user's.
    assert chat(bob, "add buy milk").body == theirs.body
    assert chat(alice, "add buy milk").body == mine.body
    assert len(_messages(direct_url)) == 4


def test_chat_key_on_a_foreign_conversation_is_404_and_claims_nothing(
    chat: Callable[..., Response], alice: str, bob: str, direct_url: str
) -> None:
    conversation = chat(alice, "hello", key=None).json()["conversation_id"]
    assert chat(bob, "hi", conversation).status == 404
    assert _rows(direct_url, "SELECT count(*) FROM idempotency_key") == [(0,)]
    assert chat(bob, "hi").status == 200  # the key is still free for bob


def test_chat_expired_key_is_a_new_turn(
    chat: Callable[..., Response], alice: str, direct_url: str
) -> None:
    first = chat(alice, "hello")
    _execute(direct_url, "UPDATE idempotency_key SET expires_at = now() - interval '1 second'")
    again = chat(alice, "hello")
    assert again.status == 200
    assert again.json()["conversation_id"] != first.json()["conversation_id"]
    assert len(_messages(direct_url)) == 4
    assert _rows(direct_url, "SELECT count(*) FROM idempotency_key") == [(1,)]


class _FailingOnce:
    calls = 0

    def __init__(self, tools: TaskTools) -> None:
        from todo_core.chat.builtin_assistant import BuiltinAssistant  # noqa: PLC0415

        self.builtin = BuiltinAssistant(tools)

    def reply(self, history: Any, message: str, *, user_id: str) -> AssistantReply:
        type(self).calls += 1
        if type(self).calls == 1:
            raise RuntimeError(f"model exploded on {message!r}")
        return self.builtin.reply(history, message, user_id=user_id)


@pytest.fixture
def assistant_failing_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_FailingOnce, "calls", 0)
    monkeypatch.setitem(assistant_module.ASSISTANTS, "builtin", _FailingOnce)


@pytest.mark.usefixtures("assistant_failing_once")
def test_chat_retry_after_assistant_failure_answers_the_stored_question(
    chat: Callable[..., Response], alice: str, direct_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    failed = chat(alice, "add a private thing")
    assert failed.status == 502
    [(question_id, conversation, role, _, _)] = _messages(direct_url)
    assert role == "user"
    retry = chat(alice, "add a private thing")
    assert retry.status == 200
    assert retry.json()["conversation_id"] == conversation  # the first attempt's conversation
    assert [m[2:] for m in _messages(direct_url)] == [
        ("user", "add a private thing", None),
        ("assistant", retry.json()["response"], question_id),
    ]
    assert _rows(direct_url, "SELECT count(*) FROM conversation") == [(1,)]
    assert chat(alice, "add a private thing").body == retry.body
    assert "private thing" not in caplog.text


@pytest.mark.usefixtures("assistant_failing_once")
def test_chat_retry_after_failure_sees_only_the_history_before_its_question(
    chat: Callable[..., Response], alice: str, direct_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []
    original = _FailingOnce.reply

    def recording(self: _FailingOnce, history: Any, message: str, *, user_id: str) -> Any:
        seen.append([m.content for m in history])
        return original(self, history, message, user_id=user_id)

    monkeypatch.setattr(_FailingOnce, "reply", recording)
    assert chat(alice, "add water plants").status == 502
    [(_, conversation, _, _, _)] = _messages(direct_url)
    # Another turn lands in the conversation before the retry.
    later = chat(alice, "add feed cat", conversation, key=None)
    assert later.status == 200
    retry = chat(alice, "add water plants")
    assert retry.status == 200
    assert seen == [[], ["add water plants"], []]  # the retry's window ends before its question
    assert [m[3] for m in _messages(direct_url)] == [
        "add water plants",
        retry.json()["response"],
        "add feed cat",
        later.json()["response"],
    ]


@pytest.mark.usefixtures("assistant_failing_once")
def test_chat_take_over_of_a_failed_turn_takes_only_the_callers_key(
    chat: Callable[..., Response],
    alice: str,
    bob: str,
    direct_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Both users' first attempts fail with the same key: two unanswered keys, one per user.
    assert chat(alice, "add alice thing").status == 502
    monkeypatch.setattr(_FailingOnce, "calls", 0)
    assert chat(bob, "add bob thing").status == 502
    monkeypatch.setattr(chat_service, "IN_PROGRESS_WAIT_SECONDS", 0.3)
    bobs = chat(bob, "add bob thing")  # takes over his own key, and only his
    assert bobs.status == 200
    alices = chat(alice, "add alice thing")
    assert alices.status == 200, alices.body  # her key was not leased by bob's take-over
    assert bobs.json()["conversation_id"] != alices.json()["conversation_id"]
    assert sorted(_rows(direct_url, "SELECT user_id, title FROM task")) == sorted(
        [(alice, "alice thing"), (bob, "bob thing")]
    )


def test_chat_retry_while_first_attempt_holds_the_lease_is_409_then_taken_over(
    chat: Callable[..., Response],
    alice: str,
    direct_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chat_service, "IN_PROGRESS_WAIT_SECONDS", 0.3)
    first = chat(alice, "add buy milk")
    # Pretend the first attempt crashed after storing the question, before the reply.
    _execute(direct_url, "DELETE FROM message WHERE role = 'assistant'")
    _execute(
        direct_url,
        "UPDATE idempotency_key SET response = NULL, status_code = NULL,"
        " locked_until = now() + interval '1 hour'",
    )
    busy = chat(alice, "add buy milk")
    assert busy.status == 409
    assert busy.json() == {"detail": "A request with this Idempotency-Key is still in progress"}
    _execute(direct_url, "UPDATE idempotency_key SET locked_until = now() - interval '1 second'")
    taken = chat(alice, "add buy milk")
    assert taken.status == 200
    assert taken.json()["conversation_id"] == first.json()["conversation_id"]
    assert [m[2] for m in _messages(direct_url)] == ["user", "assistant"]


def test_chat_retry_of_a_turn_in_progress_waits_5_seconds_before_its_409(
    chat: Callable[..., Response], alice: str, direct_url: str
) -> None:
    chat(alice, "add buy milk")
    # The first attempt is still running: its question is stored, its reply not yet.
    _execute(direct_url, "DELETE FROM message WHERE role = 'assistant'")
    _execute(
        direct_url,
        "UPDATE idempotency_key SET response = NULL, status_code = NULL,"
        " locked_until = now() + interval '1 hour'",
    )
    started = time.monotonic()
    busy = chat(alice, "add buy milk")
    waited = time.monotonic() - started
    assert busy.status == 409
    assert 5.0 <= waited < 8.0, waited  # room for a loaded machine; 10 s would fail


@pytest.mark.usefixtures("assistant_failing_once")
def test_chat_round_trips_of_a_retry_after_failure(
    chat: Callable[..., Response], alice: str, wire: WireTap
) -> None:
    failed, counts = wire.measure(lambda: chat(alice, "something unclear"))
    assert failed.status == 502
    assert counts.round_trips == 2, counts.sql  # open the turn, release the lease
    retry, counts = wire.measure(lambda: chat(alice, "something unclear"))
    assert retry.status == 200
    assert counts.round_trips == 4, counts.sql  # failed claim, read the key, take over, finish


def test_chat_racing_retries_across_instances_store_one_turn(
    three_instances: list[str], alice: str, token_for: Callable[..., str], direct_url: str
) -> None:
    rounds = 5
    bodies: list[object] = [{"message": f"add t{n}"} for n in range(rounds)]
    for results in race_keyed_posts(
        three_instances, f"/api/{alice}/chat", token=token_for(alice), bodies=bodies
    ):
        assert {status for status, _ in results} == {200}, results
        assert len({body for _, body in results}) == 1, results
    messages = _messages(direct_url)
    assert len(messages) == 2 * rounds
    for question, reply in zip(messages[::2], messages[1::2], strict=True):
        assert (question[2], reply[2], reply[4]) == ("user", "assistant", question[0])
    assert _rows(direct_url, "SELECT count(*) FROM conversation") == [(rounds,)]
    titles = sorted(r[0] for r in _rows(direct_url, "SELECT title FROM task"))
    assert titles == sorted(f"t{n}" for n in range(rounds))
