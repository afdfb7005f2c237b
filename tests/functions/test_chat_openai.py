"""CHAT_ASSISTANT=openai through the real chat function, the real SDK over real HTTP, and the
fake OpenAI-compatible server (infra/fakeopenai): tool calls, history, and every failure."""

from __future__ import annotations

import email.utils
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx2
import openai
import psycopg
import pytest
from pydantic_core import to_json

from fakeopenai import FakeOpenAI, error, hang, malformed, reply, tool_calls, trickle
from fakeopenai.server import ScriptedResponse, refused_base_url
from tests.api_client import ApiClient, Response
from tests.conftest import ROOT, functions_environment
from todo_core.chat.openai_assistant import _retry_after_seconds, client_for
from todo_core.chat.tools import (
    ARGUMENTS_MAX_CHARS,
    LIST_LIMIT,
    TOOL_NAME_MAX,
    TURN_CALLS_MAX_BYTES,
)
from todo_core.settings import get_settings
from todo_core.tasks.models import DESCRIPTION_MAX, TITLE_MAX

KEY = "turn-openai-1"
SECRET_MESSAGE = "add pick up the confidential parcel"
FAKE_KEY = "sk-fake-5ecret-key-value"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=FAKE_KEY) as server:
        yield server


def _model_environment(base_url: str, **extra: str) -> dict[str, str]:
    return {
        "CHAT_ASSISTANT": "openai",
        "OPENAI_API_KEY": FAKE_KEY,
        "OPENAI_BASE_URL": base_url,
        "CHAT_MODEL": "fake-model",
        "CHAT_MODEL_TIMEOUT_SECONDS": "2",
        "CHAT_MODEL_MAX_RETRIES": "0",
        "CHAT_MAX_TOOL_ROUNDS": "3",
        **extra,
    }


@pytest.fixture
def model(fake: FakeOpenAI, app_environment: dict[str, str]) -> Iterator[FakeOpenAI]:
    """The chat function answers with the fake model (its queue and log emptied)."""
    fake.reset()
    with functions_environment(_model_environment(fake.base_url)):
        yield fake
    fake.reset()


def _messages(direct_url: str) -> list[tuple[str, str, int | None]]:
    with psycopg.connect(direct_url) as connection:
        return connection.execute(
            "SELECT role, content, reply_to_id FROM message ORDER BY coalesce(reply_to_id, id), id"
        ).fetchall()


def test_chat_openai_conversation_drives_the_task_tools(
    model: FakeOpenAI,
    send_chat: Callable[..., Response],
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
) -> None:
    added = send_chat(alice, "add buy milk")
    assert added.status == 200, added.body
    [call] = added.json()["tool_calls"]
    assert (call["name"], call["arguments"]) == ("add_task", {"title": "buy milk"})
    task_id = call["result"]["task_id"]
    assert added.json()["response"] == f"Created “buy milk” (task {task_id})."
    conversation = added.json()["conversation_id"]
    tasks_url = f"/api/{alice}/tasks/{task_id}"
    assert api.get(tasks_url, token=token_for(alice)).json()["title"] == "buy milk"

    listed = send_chat(alice, "list my tasks", conversation).json()
    assert listed["tool_calls"][0]["result"]["count"] == 1

    completed = send_chat(alice, "complete it", conversation)
    assert completed.json()["tool_calls"][0]["arguments"] == {"task_id": task_id}
    assert api.get(tasks_url, token=token_for(alice)).json()["completed"] is True
    # "it" was resolvable because the model saw the earlier turns' tool calls and results.
    seen = model.requests[-2].messages  # the completion call that asked for complete_task
    [first_round] = [m for m in seen if m.get("tool_calls")][:1]
    assert first_round["tool_calls"][0]["function"]["name"] == "add_task"
    result_message = next(
        m for m in seen if m.get("tool_call_id") == first_round["tool_calls"][0]["id"]
    )
    assert json.loads(result_message["content"])["task_id"] == task_id

    deleted = send_chat(alice, "delete it", conversation)
    assert deleted.json()["tool_calls"][0]["result"]["status"] == "deleted"
    assert api.get(tasks_url, token=token_for(alice)).status == 404


def test_chat_openai_sends_model_tools_and_key(
    model: FakeOpenAI, send_chat: Callable[..., Response], alice: str
) -> None:
    assert send_chat(alice, "hello").status == 200
    [request] = model.requests
    assert request.headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert request.body is not None
    assert request.body["model"] == "fake-model"
    names = {tool["function"]["name"] for tool in request.body["tools"]}
    assert {"add_task", "list_tasks", "complete_task", "delete_task", "update_task"} <= names
    assert [m["role"] for m in request.messages] == ["system", "user"]


def test_chat_openai_bad_tool_call_goes_back_to_the_model(
    model: FakeOpenAI, send_chat: Callable[..., Response], alice: str
) -> None:
    model.script(
        tool_calls(("add_task", "{oops"), ("delete_task", {"task_id": 5, "user_id": "bob"})),
        reply("Sorry, I could not do that."),
    )
    response = send_chat(alice, "do something odd")
    assert response.status == 200
    results = [c["result"]["error"] for c in response.json()["tool_calls"]]
    assert results == ["invalid_arguments", "invalid_arguments"]
    tool_answers = [m for m in model.requests[-1].messages if m["role"] == "tool"]
    assert [json.loads(m["content"])["error"] for m in tool_answers] == results


# Python's json reads all of these from a model's answer; PostgreSQL stores none of them (NUL in
# text or jsonb, a lone surrogate in UTF-8, NaN or infinity in jsonb).
UNSTORABLE_ARGUMENTS = {
    "nul": {"title": "a\u0000b"},
    "lone surrogate": {"title": "a\udc00"},
    "nul in a key": {"title": "ab", "x\u0000": 1},
    "nan": '{"title": "ab", "x": NaN}',
    "infinity": '{"title": "ab", "x": 1e999}',
}


@pytest.mark.parametrize("arguments", UNSTORABLE_ARGUMENTS.values(), ids=UNSTORABLE_ARGUMENTS)
def test_chat_openai_unstorable_tool_arguments_go_back_to_the_model(
    model: FakeOpenAI,
    send_chat: Callable[..., Response],
    alice: str,
    direct_url: str,
    arguments: dict[str, object] | str,
) -> None:
    model.script(tool_calls(("add_task", arguments)), reply("I could not add it."))
    response = send_chat(alice, "add something")
    assert response.status == 200, response.body
    (call,) = response.json()["tool_calls"]
    assert (call["arguments"], call["result"]["error"]) == ({}, "invalid_arguments")
    (tool_answer,) = [m for m in model.requests[-1].messages if m["role"] == "tool"]
    assert json.loads(tool_answer["content"])["error"] == "invalid_arguments"
    assert [role for role, _, _ in _messages(direct_url)] == ["user", "assistant"]


def test_chat_openai_unstorable_text_in_the_answer_is_a_200_not_a_500(
    model: FakeOpenAI,
    send_chat: Callable[..., Response],
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    direct_url: str,
) -> None:
    # PostgreSQL stores no NUL in text or jsonb, UTF-8 no lone surrogate; a model's JSON may
    # hold both (as escapes), in its text, a tool's name or its arguments. Each used to fail the
    # reply's insert: a 500, the key leased for 45 s, the turn unanswerable.
    model.script(
        tool_calls(
            ("add_task", {"title": "milk\u0000"}),
            ("add_task", '{"title": "milk\ud800"}'),  # a lone surrogate in the arguments' text
            ("list_tasks", {"\ud800": "all"}),
            ("complete_task", '{"task_id": NaN}'),
            ("complete_task", '{"task_id": 1e400}'),
            ("delete_\u0000task", {"task_id": 1}),
            ("add_\udc00task", {"title": "eggs"}),
        ),
        reply("Done\u0000 \ud83d."),
    )
    response = send_chat(alice, "add milk", key=KEY)
    assert response.status == 200, response.body
    answer = response.json()
    assert answer["response"] == "Done\ufffd \ufffd."
    calls = [(c["name"], c["arguments"], c["result"]["error"]) for c in answer["tool_calls"]]
    assert calls == [
        *[(name, {}, "invalid_arguments") for name in ["add_task"] * 2 + ["list_tasks"]],
        *[("complete_task", {}, "invalid_arguments")] * 2,
        ("delete_\ufffdtask", {"task_id": 1}, "unknown_tool"),
        ("add_\ufffdtask", {"title": "eggs"}, "unknown_tool"),
    ]
    assert _messages(direct_url)[1] == ("assistant", "Done\ufffd \ufffd.", 1)
    with psycopg.connect(direct_url) as connection:
        assert connection.execute("SELECT count(*) FROM task").fetchone() == (0,)
    page = api.get(
        f"/api/{alice}/conversations/{answer['conversation_id']}/messages", token=token_for(alice)
    )
    assert page.json()["items"][1]["tool_calls"] == answer["tool_calls"]
    # The round was echoed to the provider as it asked, in what UTF-8 can carry.
    [echoed] = [m for m in model.requests[-1].messages if m.get("tool_calls")]
    assert echoed["tool_calls"][-1]["function"]["name"] == "add_\ufffdtask"


# A provider's error message may quote the request (the user's message, the key): it is never
# logged, only the error's type and status are.
ECHO = f"cannot process {SECRET_MESSAGE!r} for key {FAKE_KEY}"
A_DAY_FROM_NOW = email.utils.format_datetime(datetime.now(UTC) + timedelta(days=1), usegmt=True)
FAILURES: list[tuple[str, list[ScriptedResponse], int, str | None]] = [
    ("rate_limited", [error(429, retry_after="7", message=ECHO)], 503, "7"),
    ("server_error", [error(500, message=ECHO)], 503, "2"),
    ("request_timeout", [error(408, message=ECHO)], 503, "2"),  # transient: was a 502
    ("conflict", [error(409, retry_after="3", message=ECHO)], 503, "3"),
    # RFC 9110's other form, an HTTP-date: a day from now is more than anyone waits (capped).
    ("rate_limited_until_a_date", [error(429, retry_after=A_DAY_FROM_NOW)], 503, "60"),
    ("overloaded", [error(503, message=ECHO)], 503, "2"),
    ("bad_key", [error(401, message=ECHO)], 502, None),
    ("malformed", [malformed()], 502, None),
    ("timeout", [hang(5)], 504, "1"),
    ("too_many_rounds", [tool_calls(("list_tasks", {}))] * 4, 502, None),
]


@pytest.mark.parametrize(
    ("script", "status", "retry_after"),
    [failure[1:] for failure in FAILURES],
    ids=[failure[0] for failure in FAILURES],
)
def test_chat_openai_failure_answers_as_documented_and_a_retry_completes(
    model: FakeOpenAI,
    send_chat: Callable[..., Response],
    alice: str,
    direct_url: str,
    caplog: pytest.LogCaptureFixture,
    script: list[ScriptedResponse],
    status: int,
    retry_after: str | None,
) -> None:
    model.script(*script)
    failed = send_chat(alice, SECRET_MESSAGE, key=KEY)
    assert failed.status == status, failed.body
    assert failed.headers.get("retry-after") == retry_after
    assert "your message was saved" in failed.json()["detail"] or status == 502
    assert _messages(direct_url) == [("user", SECRET_MESSAGE, None)]  # stored, no half reply
    model.reset()
    retried = send_chat(alice, SECRET_MESSAGE, key=KEY)
    assert retried.status == 200, retried.body
    stored = _messages(direct_url)
    assert [(role, content) for role, content, _ in stored] == [
        ("user", SECRET_MESSAGE),
        ("assistant", retried.json()["response"]),
    ]
    assert "confidential" not in caplog.text
    assert FAKE_KEY not in caplog.text


OUTPUT_LIMITS = [
    ({}, {}),
    ({"CHAT_MODEL_MAX_OUTPUT_TOKENS": "300"}, {"max_completion_tokens": 300}),
    (
        {"CHAT_MODEL_MAX_OUTPUT_TOKENS": "300", "CHAT_MODEL_MAX_TOKENS_FIELD": "max_tokens"},
        {"max_tokens": 300},
    ),
    ({"CHAT_MODEL_MAX_OUTPUT_TOKENS": "0", "CHAT_MODEL_MAX_TOKENS_FIELD": "max_tokens"}, {}),
]


@pytest.mark.parametrize(
    ("settings", "sent"), OUTPUT_LIMITS, ids=["unset", "current name", "older name", "zero"]
)
def test_chat_openai_output_limit_is_sent_under_the_configured_name(
    fake: FakeOpenAI,
    app_environment: dict[str, str],
    send_chat: Callable[..., Response],
    alice: str,
    settings: dict[str, str],
    sent: dict[str, int],
) -> None:
    fake.reset()
    with functions_environment(_model_environment(fake.base_url, **settings)):
        fake.script(tool_calls(("list_tasks", {})), reply("Nothing to do."))
        assert send_chat(alice, "what is on my list?").status == 200
    calls = [request.body or {} for request in fake.requests]
    assert len(calls) == 2  # every model call of the turn carries it
    for body in calls:
        names = ("max_completion_tokens", "max_tokens")
        assert {name: body[name] for name in names if name in body} == sent


def test_chat_openai_answer_cut_at_the_output_limit_ends_with_the_marker(
    model: FakeOpenAI,
    send_chat: Callable[..., Response],
    alice: str,
    direct_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    model.script(reply("Here is a long story about your tasks, and", finish_reason="length"))
    answered = send_chat(alice, SECRET_MESSAGE)
    assert answered.status == 200, answered.body
    text = "Here is a long story about your tasks, and […]"
    assert answered.json()["response"] == text
    assert _messages(direct_url)[-1][:2] == ("assistant", text)
    assert "model answer cut at its output limit" in caplog.text


def test_chat_openai_output_limit_reached_before_any_text_is_502(
    model: FakeOpenAI,
    send_chat: Callable[..., Response],
    alice: str,
    direct_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A reasoning model spends its limit thinking: no text, no tool call.
    model.script(reply("", finish_reason="length"))
    failed = send_chat(alice, SECRET_MESSAGE, key=KEY)
    assert failed.status == 502, failed.body
    assert "model reached its output limit before answering" in caplog.text
    assert _messages(direct_url) == [("user", SECRET_MESSAGE, None)]
    retried = send_chat(alice, SECRET_MESSAGE, key=KEY)  # the scripted agent answers now
    assert retried.status == 200, retried.body


def test_chat_openai_long_reply_is_cut_to_the_limit_with_a_marker(
    model: FakeOpenAI,
    send_chat: Callable[..., Response],
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    direct_url: str,
) -> None:
    # A 7 MB text used to be stored and returned whole: past Lambda's 6 MB response, and every
    # keyed retry replayed it, and the conversation's pages could not be read any more.
    limit = get_settings().chat_max_reply_chars
    model.script(reply("word " * 200_000))  # 1,000,000 characters
    response = send_chat(alice, "talk a lot", key=KEY)
    assert response.status == 200, response.body
    text = response.json()["response"]
    assert len(text) == limit
    assert text.endswith(" […]")
    assert ("word " * 200_000).startswith(text.removesuffix(" […]"))
    assert len(response.body) < 2 * limit
    assert _messages(direct_url)[1] == ("assistant", text, 1)
    assert send_chat(alice, "talk a lot", key=KEY).body == response.body  # replayed, same
    page = api.get(
        f"/api/{alice}/conversations/{response.json()['conversation_id']}/messages",
        token=token_for(alice),
    )
    assert page.json()["items"][1]["content"] == text


def test_chat_openai_tool_rounds_stop_at_the_limit_and_a_retry_completes(
    model: FakeOpenAI, send_chat: Callable[..., Response], alice: str, direct_url: str
) -> None:
    # CHAT_MAX_TOOL_ROUNDS=3: three calls may ask for tools, the fourth must answer in text.
    # Its tools used to run too (a fourth task, recorded), and a retry then found four rounds
    # spent and answered 502 without asking the model: the turn could never complete.
    model.script(*[tool_calls(("add_task", {"title": f"task {n}"})) for n in range(5)])
    failed = send_chat(alice, SECRET_MESSAGE, key=KEY)
    assert failed.status == 502, failed.body
    assert len(model.requests) == 4
    with psycopg.connect(direct_url) as connection:
        titles = [row[0] for row in connection.execute("SELECT title FROM task ORDER BY id")]
    assert titles == ["task 0", "task 1", "task 2"]
    model.reset()
    model.script(reply("Added three."))
    retried = send_chat(alice, SECRET_MESSAGE, key=KEY)
    assert retried.status == 200, retried.body
    assert len(model.requests) == 1  # the recorded rounds replayed, the model asked once more
    assert [c["arguments"]["title"] for c in retried.json()["tool_calls"]] == titles
    assert [role for role, _, _ in _messages(direct_url)] == ["user", "assistant"]


def test_chat_openai_calls_past_the_round_limit_are_not_run_and_the_model_is_told(
    fake: FakeOpenAI,
    app_environment: dict[str, str],
    send_chat: Callable[..., Response],
    alice: str,
    direct_url: str,
) -> None:
    # One answer may ask for any number of calls (3,000 add_task calls used to run, and their
    # record made the response megabytes long): the first CHAT_MAX_TOOL_CALLS_PER_ROUND run.
    fake.reset()
    fake.script(
        tool_calls(*[("add_task", {"title": f"task {n}"}) for n in range(5)]),
        reply("Added three; the other two were refused."),
    )
    with functions_environment(
        _model_environment(fake.base_url, CHAT_MAX_TOOL_CALLS_PER_ROUND="3")
    ):
        response = send_chat(alice, "add five tasks")
    assert response.status == 200, response.body
    assert [c["arguments"]["title"] for c in response.json()["tool_calls"]] == [
        "task 0",
        "task 1",
        "task 2",
    ]
    with psycopg.connect(direct_url) as connection:
        assert connection.execute("SELECT count(*) FROM task").fetchone() == (3,)
    # Every call of the round has its answer; the two past the limit, an error.
    answers = [json.loads(m["content"]) for m in fake.requests[-1].messages if m["role"] == "tool"]
    assert [a.get("error") for a in answers] == [None, None, None, *["too_many_calls"] * 2]
    fake.reset()


def test_chat_openai_tool_calls_stop_at_the_budget_and_a_retry_runs_none_again(
    fake: FakeOpenAI,
    app_environment: dict[str, str],
    send_chat: Callable[..., Response],
    make_task: Callable[..., dict[str, object]],
    alice: str,
    direct_url: str,
) -> None:
    # The budget used to be checked before each model call only: a round's calls all ran past
    # it (3,000 of them for 3.1 s on a 2 s budget), then the turn answered 504 anyway. Here the
    # first call waits on a row lock until after the deadline; the second must not run.
    task_id = make_task(alice, "locked")["id"]
    fake.reset()
    fake.script(
        tool_calls(("complete_task", {"task_id": task_id}), ("add_task", {"title": "too late"})),
        reply("Unreachable."),
    )
    with psycopg.connect(direct_url) as locker:
        locker.execute("SELECT FROM task WHERE id = %s FOR UPDATE", (task_id,))
        release = threading.Timer(1.5, locker.commit)
        release.start()
        try:
            with functions_environment(
                _model_environment(fake.base_url, CHAT_MODEL_TIMEOUT_SECONDS="1")
            ):
                failed = send_chat(alice, SECRET_MESSAGE, key=KEY)
        finally:
            release.join()
    assert (failed.status, failed.headers.get("retry-after")) == (504, "1"), failed.body
    assert len(fake.requests) == 1
    with psycopg.connect(direct_url) as connection:
        tasks = connection.execute("SELECT title, completed FROM task ORDER BY id").fetchall()
    assert tasks == [("locked", True)]  # the call that ran stands (and is recorded)
    fake.reset()
    fake.script(reply("Completed it."))
    with functions_environment(_model_environment(fake.base_url)):
        retried = send_chat(alice, SECRET_MESSAGE, key=KEY)
    assert retried.status == 200, retried.body
    assert [c["name"] for c in retried.json()["tool_calls"]] == ["complete_task"]
    [replayed] = [m for m in fake.requests[0].messages if m.get("tool_calls")]
    assert [c["function"]["name"] for c in replayed["tool_calls"]] == ["complete_task"]
    with psycopg.connect(direct_url) as connection:
        assert connection.execute("SELECT count(*) FROM task").fetchone() == (1,)
    fake.reset()


@pytest.mark.parametrize("body_only", [False, True], ids=["whole_answer", "body"])
def test_chat_openai_trickling_provider_is_504_at_the_budget(
    fake: FakeOpenAI,
    app_environment: dict[str, str],
    send_chat: Callable[..., Response],
    alice: str,
    direct_url: str,
    body_only: bool,
) -> None:
    # Every read gets a few bytes within a read timeout of the whole budget, and the answer
    # would take six budgets or more. The deadline holds for the turn, not for each read; and
    # a read started before it waits only what is left (not a pause of 9/10 of the budget: the
    # bound leaves half a budget for a loaded machine and still fails a pause's overrun).
    budget = 1.0
    slow = trickle("Too slow.", pause_seconds=0.9, chunk_bytes=32, body_only=body_only)
    assert len(json.dumps(slow.body)) / 32 * 0.9 > 6 * budget
    fake.reset()
    with functions_environment(
        _model_environment(fake.base_url, CHAT_MODEL_TIMEOUT_SECONDS=str(budget))
    ):
        assert send_chat(alice, "hello").status == 200  # warm: the time measured is the model's
        client = client_for(get_settings())
        before = _messages(direct_url)
        fake.script(slow)
        started = time.monotonic()
        failed = send_chat(alice, SECRET_MESSAGE, key=KEY)
        elapsed = time.monotonic() - started
        assert (failed.status, failed.headers.get("retry-after")) == (504, "1"), failed.body
        assert "your message was saved" in failed.json()["detail"]
        assert budget <= elapsed < budget + 0.5
        assert _messages(direct_url) == [*before, ("user", SECRET_MESSAGE, None)]
        # The same client serves the retry: the cut call did not leave its pool broken.
        retried = send_chat(alice, SECRET_MESSAGE, key=KEY)
        assert client_for(get_settings()) is client
    assert retried.status == 200, retried.body
    stored = [(role, content) for role, content, _ in _messages(direct_url)[len(before) :]]
    assert stored == [("user", SECRET_MESSAGE), ("assistant", retried.json()["response"])]
    fake.reset()


def test_chat_openai_wrong_key_is_502_and_counted(
    fake: FakeOpenAI,
    app_environment: dict[str, str],
    send_chat: Callable[..., Response],
    alice: str,
    direct_url: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.reset()
    with functions_environment({**_model_environment(fake.base_url), "OPENAI_API_KEY": "sk-wrong"}):
        failed = send_chat(alice, SECRET_MESSAGE, key=KEY)
    assert failed.status == 502  # the provider's own 401 for a wrong key
    assert _messages(direct_url) == [("user", SECRET_MESSAGE, None)]
    output = capsys.readouterr().out + caplog.text
    assert '"AssistantErrors":[1.0]' in output  # the metric counts a model's failure
    assert "sk-wrong" not in output
    assert "confidential" not in output
    fake.reset()


def test_chat_openai_refused_connection_is_503(
    app_environment: dict[str, str], send_chat: Callable[..., Response], alice: str, direct_url: str
) -> None:
    with functions_environment(_model_environment(refused_base_url())):
        failed = send_chat(alice, SECRET_MESSAGE, key=KEY)
    assert (failed.status, failed.headers.get("retry-after")) == (503, "2")
    assert _messages(direct_url) == [("user", SECRET_MESSAGE, None)]


def test_chat_openai_retries_a_brief_outage_within_the_budget(
    fake: FakeOpenAI,
    app_environment: dict[str, str],
    send_chat: Callable[..., Response],
    alice: str,
) -> None:
    fake.reset()
    fake.script(error(503, retry_after="1"), reply("Back."))
    with functions_environment(
        _model_environment(
            fake.base_url, CHAT_MODEL_MAX_RETRIES="1", CHAT_MODEL_TIMEOUT_SECONDS="5"
        )
    ):
        response = send_chat(alice, "hello")
    assert (response.status, response.json()["response"]) == (200, "Back.")
    assert len(fake.requests) == 2
    fake.reset()


def test_chat_openai_history_keeps_each_tool_call_with_its_result(
    model: FakeOpenAI, send_chat: Callable[..., Response], alice: str
) -> None:
    conversation = send_chat(alice, "add one").json()["conversation_id"]
    for message in ("add two", "list my tasks", "hello"):
        assert send_chat(alice, message, conversation).status == 200
    past_results = 0
    for request in model.requests:
        messages = request.messages
        answered = {m["tool_call_id"] for m in messages if m["role"] == "tool"}
        for index, message in enumerate(messages):
            if message["role"] == "tool":
                # Every tool result follows the assistant message that asked for it...
                asked = [m for m in messages[:index] if m.get("tool_calls")]
                assert message["tool_call_id"] in {c["id"] for m in asked for c in m["tool_calls"]}
            for call in message.get("tool_calls") or []:
                assert call["id"] in answered  # ...and every call has its result.
        past_results = max(past_results, len(answered))
    assert past_results >= 2  # the later turns did see the earlier turns' calls


def test_chat_openai_sdk_is_loaded_by_the_chat_function_only(
    app_environment: dict[str, str],
) -> None:
    # Configured for a model, the chat function imports the SDK at init (not in its first
    # turn); no other function ever does. Configured for the built-in assistant, none does.
    script = (
        "import importlib.util, pathlib, sys\n"
        "def load(path):\n"
        "    spec = importlib.util.spec_from_file_location(path.parent.name, path)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "def sdk():\n"
        "    return any(m.split('.')[0] == 'openai' for m in sys.modules)\n"
        "paths = sorted(pathlib.Path('functions').glob('*/app.py'))\n"
        "for path in paths:\n"
        "    if path.parent.name != 'chat':\n"
        "        load(path)\n"
        "print(sdk())\n"
        "load(pathlib.Path('functions/chat/app.py'))\n"
        "print(sdk())\n"
    )
    outputs = {}
    for assistant in ("openai", "builtin"):
        environment = {
            **os.environ,
            **_model_environment("http://127.0.0.1:9/v1"),
            "CHAT_ASSISTANT": assistant,
            "PYTHONPATH": str(ROOT / "shared"),
        }
        result = subprocess.run(
            [sys.executable, "-c", script],
            env=environment,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs[assistant] = result.stdout.split()
    assert outputs == {"openai": ["False", "True"], "builtin": ["False", "False"]}


def test_chat_openai_oversized_arguments_and_long_unknown_names_are_recorded_bounded(
    model: FakeOpenAI,
    send_chat: Callable[..., Response],
    alice: str,
    direct_url: str,
) -> None:
    # An invalid call's arguments and an unknown tool's name used to be recorded (stored,
    # returned, replayed) at whatever size the model sent: 2 MB of either made a 2 MB response.
    huge = {"title": "x", "description": "d" * 2_000_000}
    long_name = "n" * 2_000_000
    # The largest valid arguments, every character beyond the BMP, as the fake (like Python's
    # json.dumps) escapes them: 12 characters each. They are far over 8,000 and still run.
    emoji = "\U0001f600"
    largest = {"title": emoji * TITLE_MAX, "description": emoji * DESCRIPTION_MAX}
    assert len(json.dumps(largest)) > 14_000
    model.script(
        tool_calls(
            ("add_task", huge),
            ("unknown_tool", {"x": "y" * (ARGUMENTS_MAX_CHARS + 1)}),
            (long_name, {"title": "eggs"}),
            ("add_task", largest),
        ),
        reply("Done what I could."),
    )
    response = send_chat(alice, "add a lot")
    assert response.status == 200, response.body
    calls = response.json()["tool_calls"]
    assert [(c["name"], c["arguments"], c["result"].get("error")) for c in calls[:3]] == [
        ("add_task", {}, "invalid_arguments"),
        ("unknown_tool", {}, "invalid_arguments"),
        ("n" * TOOL_NAME_MAX, {"title": "eggs"}, "unknown_tool"),
    ]
    assert calls[3]["result"]["status"] == "created"
    assert len(response.body) < 40_000
    with psycopg.connect(direct_url) as connection:
        assert connection.execute("SELECT title FROM task").fetchall() == [(emoji * TITLE_MAX,)]
    # The model was told why (its answers are not cut: it reads its own call back).
    answers = [json.loads(m["content"]) for m in model.requests[-1].messages if m["role"] == "tool"]
    assert f"longer than {ARGUMENTS_MAX_CHARS} characters" in answers[0]["message"]
    assert answers[2]["message"].startswith(f"No tool {'n' * TOOL_NAME_MAX!r}")


def test_chat_openai_tool_calls_stop_at_the_turn_budget_and_the_model_is_told(
    model: FakeOpenAI,
    send_chat: Callable[..., Response],
    make_task: Callable[..., dict[str, object]],
    alice: str,
    direct_url: str,
) -> None:
    # A model that lists again and again: each listing of 50 tasks is about 70 KB here (up to
    # 255 KB in 4-byte characters), and its 80 calls a turn used to make a response of MBs.
    for n in range(LIST_LIMIT):
        make_task(alice, f"{n:02d} " + "t" * (TITLE_MAX - 3), description="d" * DESCRIPTION_MAX)
    model.script(
        tool_calls(*[("list_tasks", {})] * 16),
        tool_calls(("list_tasks", {}), ("add_task", {"title": "one more"})),
        reply("Here they are."),
    )
    response = send_chat(alice, "list my tasks, many times")
    assert response.status == 200, response.body
    calls = response.json()["tool_calls"]
    assert {(c["name"], c["result"]["count"]) for c in calls} == {("list_tasks", LIST_LIMIT)}
    sizes = [len(to_json(call)) for call in calls]
    # The calls ran until their record reached the budget, the one that reached it included.
    assert sum(sizes[:-1]) < TURN_CALLS_MAX_BYTES <= sum(sizes)
    assert 1 < len(calls) < 16
    assert len(response.body) < TURN_CALLS_MAX_BYTES + max(sizes) + 1_000
    with psycopg.connect(direct_url) as connection:
        assert connection.execute("SELECT count(*) FROM task").fetchone() == (LIST_LIMIT,)
        [(stored,)] = connection.execute(
            "SELECT tool_calls FROM message WHERE role = 'assistant'"
        ).fetchall()
    assert stored == calls
    # Each call past the budget was answered to the model, in that round and the next.
    first, second = (
        [json.loads(m["content"]) for m in request.messages[-n:]]
        for request, n in ((model.requests[1], 16), (model.requests[2], 2))
    )
    assert [a.get("error") for a in first] == [None] * len(calls) + ["too_many_calls"] * (
        16 - len(calls)
    )
    assert [a.get("error") for a in second] == ["too_many_calls"] * 2
    assert "size limit" in second[0]["message"]


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7),
        ({"retry-after": "0.2"}, 1),
        ({"retry-after-ms": "2500", "retry-after": "30"}, 3),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 1),  # a date gone by: at once
        ({"retry-after": A_DAY_FROM_NOW}, 60),
        ({"retry-after": A_DAY_FROM_NOW.replace("GMT", "-0000")}, 60),
        ({"retry-after": "soon"}, 2),
        ({"retry-after": "nan"}, 2),
        ({"retry-after": "1e999"}, 2),
        ({"retry-after-ms": "x"}, 2),
        ({}, 2),
    ],
)
def test_chat_openai_retry_after_reads_seconds_and_http_dates(
    headers: dict[str, str], seconds: int
) -> None:
    request = httpx2.Request("POST", "http://model")
    response = httpx2.Response(429, headers=headers, request=request)
    rate_limited = openai.RateLimitError("rate limited", response=response, body=None)
    assert _retry_after_seconds(rate_limited) == seconds
