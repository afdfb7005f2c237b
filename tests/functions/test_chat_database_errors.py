"""A database statement of a chat turn that fails while the connection survives (PostgreSQL
cancels it: a ``statement_timeout``, an operator's ``pg_cancel_backend``) is the database's
503 with Retry-After, as the README's table says, not the assistant's 502; and the turn's
Idempotency-Key is not left leased by it, so the retry the 503 asks for completes the turn."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from tests.api_client import ApiClient, Response
from tests.polling import wait_for_lock_waiters
from todo_core.chat import assistant as assistant_module
from todo_core.chat.builtin_assistant import BuiltinAssistant
from todo_core.chat.tools import TaskTools
from todo_core.chat.types import AssistantReply, HistoryMessage


def _cancel_the_statement_waiting_for_a_lock(direct_url: str) -> None:
    """Cancel (as a ``statement_timeout`` would) the function's statement that waits on a lock
    the test holds; its connection stays open."""
    pids = wait_for_lock_waiters(direct_url)
    with psycopg.connect(direct_url, autocommit=True) as connection:
        for pid in pids:
            connection.execute("SELECT pg_cancel_backend(%s)", (pid,))


def _chat(api: ApiClient, user: str, token: str, message: str, key: str) -> Response:
    return api.post(
        f"/api/{user}/chat",
        token=token,
        json_body={"message": message},
        headers={"Idempotency-Key": key},
    )


def test_chat_tool_call_cancelled_by_the_database_is_503_and_a_retry_completes(
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    make_task: Callable[..., dict[str, Any]],
    direct_url: str,
) -> None:
    task = make_task(alice, "buy milk")
    token = token_for(alice)
    message = f"complete task {task['id']}"
    with psycopg.connect(direct_url) as holding, ThreadPoolExecutor(max_workers=1) as pool:
        holding.execute("SELECT FROM task WHERE id = %s FOR UPDATE", (task["id"],))
        turn = pool.submit(_chat, api, alice, token, message, "k-tool")
        _cancel_the_statement_waiting_for_a_lock(direct_url)
        failed = turn.result(timeout=30)
        holding.rollback()
    assert failed.status == 503, failed.body
    assert "retry-after" in failed.headers
    started = time.monotonic()
    retried = _chat(api, alice, token, message, "k-tool")
    assert retried.status == 200, retried.body
    assert time.monotonic() - started < 2  # the key was released, not leased for 45 s
    [call] = retried.json()["tool_calls"]
    assert call["result"]["status"] == "completed"


class _GatedAssistant:
    """The built-in assistant, once the test says go: the turn's key is claimed by then."""

    started = threading.Event()
    go = threading.Event()

    def __init__(self, tools: TaskTools) -> None:
        self.inner = BuiltinAssistant(tools)

    def reply(
        self, history: Sequence[HistoryMessage], message: str, *, user_id: str
    ) -> AssistantReply:
        self.started.set()
        assert self.go.wait(10)
        return self.inner.reply(history, message, user_id=user_id)


@pytest.fixture
def gated_assistant(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_GatedAssistant]]:
    _GatedAssistant.started.clear()
    _GatedAssistant.go.clear()
    monkeypatch.setitem(assistant_module.ASSISTANTS, "builtin", _GatedAssistant)
    yield _GatedAssistant
    _GatedAssistant.go.set()


def test_chat_reply_cancelled_by_the_database_is_503_and_leaves_no_lease(
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    direct_url: str,
    gated_assistant: type[_GatedAssistant],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = token_for(alice)
    with psycopg.connect(direct_url) as holding, ThreadPoolExecutor(max_workers=1) as pool:
        turn = pool.submit(_chat, api, alice, token, "add buy milk", "k-reply")
        assert gated_assistant.started.wait(10)
        # The reply's statement touches the conversation: it waits on this lock (the lease's
        # release does not).
        holding.execute("SELECT FROM conversation FOR UPDATE")
        gated_assistant.go.set()
        _cancel_the_statement_waiting_for_a_lock(direct_url)
        failed = turn.result(timeout=30)
        holding.rollback()
    assert failed.status == 503, failed.body
    with psycopg.connect(direct_url) as connection:
        assert connection.execute("SELECT role FROM message ORDER BY id").fetchall() == [("user",)]
        [(locked_until_passed,)] = connection.execute(
            "SELECT locked_until <= now() FROM idempotency_key"
        ).fetchall()
    assert locked_until_passed  # not leased for 45 s: the retry the 503 asks for may answer
    started = time.monotonic()
    retried = _chat(api, alice, token, "add buy milk", "k-reply")
    assert retried.status == 200, retried.body
    assert time.monotonic() - started < 2
    with psycopg.connect(direct_url) as connection:
        assert connection.execute("SELECT title FROM task").fetchall() == [("buy milk",)]
        assert connection.execute("SELECT role FROM message ORDER BY id").fetchall() == [
            ("user",),
            ("assistant",),
        ]
