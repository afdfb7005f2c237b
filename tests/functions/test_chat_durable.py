"""Durable turns: an attempt killed between a tool's effect and the reply, then retried with the
same Idempotency-Key, never runs a tool call twice, with either assistant. The whole suite also
runs through PgBouncer (``make pytest-pgbouncer``)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from pydantic_core import to_json

from fakeopenai import FakeOpenAI, error, reply, tool_calls
from tests.api_client import Response
from tests.conftest import functions_environment
from todo_core.chat import store as store_module
from todo_core.chat import tools as tools_module
from todo_core.chat.tools import TURN_CALLS_MAX_BYTES
from todo_core.tasks.models import DESCRIPTION_MAX, TITLE_MAX

KEY = "durable-turn-1"


class Crash(RuntimeError):
    """The attempt dies here (a bug, a lost container): nothing catches it on purpose."""


@pytest.fixture
def chat(send_chat: Callable[..., Response]) -> Callable[..., Response]:
    """A turn with this file's Idempotency-Key: every attempt is a retry of the first."""
    return functools.partial(send_chat, key=KEY)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="durable-key") as server:
        yield server


@pytest.fixture(params=["builtin", "openai"])
def assistant(
    request: pytest.FixtureRequest, fake: FakeOpenAI, app_environment: dict[str, str]
) -> Iterator[str]:
    fake.reset()
    environment = {"CHAT_ASSISTANT": request.param}
    if request.param == "openai":
        environment = _model_environment(fake)
    with functions_environment(environment):
        yield request.param
    fake.reset()


def _model_environment(fake: FakeOpenAI) -> dict[str, str]:
    return {
        "CHAT_ASSISTANT": "openai",
        "OPENAI_API_KEY": "durable-key",
        "OPENAI_BASE_URL": fake.base_url,
        "CHAT_MODEL": "fake-model",
        "CHAT_MODEL_MAX_RETRIES": "0",
    }


def _rows(direct_url: str, query: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(direct_url, autocommit=True) as connection:
        return connection.execute(query, args).fetchall()


def _execute(direct_url: str, statement: str) -> None:
    with psycopg.connect(direct_url, autocommit=True) as connection:
        connection.execute(statement)


def _tasks(direct_url: str, user_id: str) -> list[str]:
    return [r[0] for r in _rows(direct_url, "SELECT title FROM task WHERE user_id = %s", user_id)]


def _crash_once_after_a_tool_write(monkeypatch: pytest.MonkeyPatch, *, writes: int = 1) -> None:
    """The turn's first ``writes`` tool writes commit with their records; then the attempt
    dies (once: later writes go through)."""
    original = tools_module.run_recorded
    done: list[bool] = []

    def write_then_crash(*args: Any, **kwargs: Any) -> Any:
        row = original(*args, **kwargs)
        done.append(True)
        if len(done) == writes:
            raise Crash("after the tool's effect")
        return row

    monkeypatch.setattr(tools_module, "run_recorded", write_then_crash)


def _crash_once_storing_the_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    original = store_module.finish_turn
    crashed: list[bool] = []

    def crash_then_store(*args: Any, **kwargs: Any) -> Any:
        if not crashed:
            crashed.append(True)
            raise Crash("before the reply was stored")
        return original(*args, **kwargs)

    monkeypatch.setattr(store_module, "finish_turn", crash_then_store)


def _assert_one_turn_one_task(direct_url: str, user_id: str, retried: Response) -> None:
    assert retried.status == 200, retried.body
    assert _tasks(direct_url, user_id) == ["buy milk"]  # the tool ran once
    [(question_id,)] = _rows(direct_url, "SELECT id FROM message WHERE role = 'user'")
    assert _rows(
        direct_url, "SELECT step, name FROM chat_tool_step WHERE user_message_id = %s", question_id
    ) == [(0, "add_task")]
    [call] = retried.json()["tool_calls"]
    assert (call["name"], call["result"]["status"], call["result"]["title"]) == (
        "add_task",
        "created",
        "buy milk",
    )
    assert [r[0] for r in _rows(direct_url, "SELECT role FROM message ORDER BY id")] == [
        "user",
        "assistant",
    ]


def test_chat_durable_assistant_failing_after_a_tool_retry_runs_no_tool_again(
    assistant: str,
    fake: FakeOpenAI,
    chat: Callable[..., Response],
    alice: str,
    direct_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if assistant == "openai":
        # The model asks for the tool, then its provider fails before the model's answer.
        fake.script(tool_calls(("add_task", {"title": "buy milk"})), error(500))
        failed_status = 503
    else:
        _crash_once_after_a_tool_write(monkeypatch)
        failed_status = 502
    failed = chat(alice, "add buy milk")
    assert failed.status == failed_status, failed.body
    assert _tasks(direct_url, alice) == ["buy milk"]  # the effect committed with its record
    retried = chat(alice, "add buy milk")
    _assert_one_turn_one_task(direct_url, alice, retried)
    if assistant == "openai":
        # The retry gave the model the recorded call and its result; it did not ask again.
        last = fake.requests[-1].messages
        asked = [m for m in last if m.get("tool_calls")]
        assert [c["function"]["name"] for m in asked for c in m["tool_calls"]] == ["add_task"]
        result = next(m for m in last if m["role"] == "tool")
        assert json.loads(result["content"])["title"] == "buy milk"


def test_chat_durable_attempt_dying_before_the_reply_is_taken_over_without_repeating(
    assistant: str,
    fake: FakeOpenAI,
    chat: Callable[..., Response],
    alice: str,
    direct_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _crash_once_storing_the_reply(monkeypatch)
    if assistant == "openai":
        fake.script(tool_calls(("add_task", {"title": "buy milk"})), reply("Added it."))
    died = chat(alice, "add buy milk")
    assert died.status == 500
    assert _tasks(direct_url, alice) == ["buy milk"]
    # The dead attempt still holds the key's lease; once it has run out, a retry takes over.
    _execute(direct_url, "UPDATE idempotency_key SET locked_until = now() - interval '1 second'")
    retried = chat(alice, "add buy milk")
    _assert_one_turn_one_task(direct_url, alice, retried)


def test_chat_durable_model_resumes_after_its_second_round(
    fake: FakeOpenAI,
    app_environment: dict[str, str],
    chat: Callable[..., Response],
    alice: str,
    direct_url: str,
) -> None:
    fake.reset()
    fake.script(
        tool_calls(("add_task", {"title": "one"}), ("add_task", {"title": "two"})),
        tool_calls(("complete_task", {"task_id": "1"}), ("list_tasks", {})),
        error(503),
    )
    with functions_environment(_model_environment(fake)):
        assert chat(alice, "add one; two").status == 503
        retried = chat(alice, "add one; two")
    assert retried.status == 200, retried.body
    assert sorted(_tasks(direct_url, alice)) == ["one", "two"]
    steps = _rows(direct_url, "SELECT step, round, name FROM chat_tool_step ORDER BY step")
    assert steps == [(0, 0, "add_task"), (1, 0, "add_task"), (2, 1, "complete_task")]
    names = [c["name"] for c in retried.json()["tool_calls"]]
    assert names == ["add_task", "add_task", "complete_task"]  # replayed; the read is not
    replayed = [m for m in fake.requests[-1].messages if m.get("tool_calls")]
    assert [len(m["tool_calls"]) for m in replayed] == [2, 1]  # regrouped by round
    fake.reset()


def test_chat_durable_retry_spends_the_turn_budget_as_the_first_attempt_did(
    fake: FakeOpenAI,
    app_environment: dict[str, str],
    chat: Callable[..., Response],
    alice: str,
    direct_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Writes of the largest tasks (about 10 KB of record each): the budget stops the turn after
    # about 25. The attempt dies after its 20th; its retry replays those 20, which count as
    # they did, so it runs only the few calls the first attempt had left, not 16 more.
    emoji = "\U0001f600"

    def add(n: int) -> tuple[str, dict[str, object]]:
        title = f"{n:02d}" + emoji * (TITLE_MAX - 2)
        return ("add_task", {"title": title, "description": emoji * DESCRIPTION_MAX})

    fake.reset()
    fake.script(tool_calls(*map(add, range(16))), tool_calls(*map(add, range(16, 32))))
    _crash_once_after_a_tool_write(monkeypatch, writes=20)
    with functions_environment(_model_environment(fake)):
        failed = chat(alice, "add all of these")
        assert failed.status == 502, failed.body
        assert len(_tasks(direct_url, alice)) == 20
        fake.script(tool_calls(*map(add, range(32, 48))), reply("Added what fitted."))
        retried = chat(alice, "add all of these")
    assert retried.status == 200, retried.body
    calls = retried.json()["tool_calls"]
    sizes = [len(to_json(call)) for call in calls]
    assert sum(sizes[:-1]) < TURN_CALLS_MAX_BYTES <= sum(sizes)
    numbers = [int(call["arguments"]["title"][:2]) for call in calls]
    assert numbers == [*range(20), *range(32, 32 + len(calls) - 20)]
    assert 20 < len(calls) < 32
    assert sorted(_tasks(direct_url, alice)) == sorted(c["arguments"]["title"] for c in calls)
    # The retry's model call saw the 20 replayed calls; of its 16, those past the budget were
    # answered with an error, not run.
    answers = [json.loads(m["content"]) for m in fake.requests[-1].messages[-16:]]
    assert [a.get("error") for a in answers] == [None] * (len(calls) - 20) + ["too_many_calls"] * (
        36 - len(calls)
    )
    fake.reset()
