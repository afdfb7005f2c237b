"""The local server end to end: a real process serving template.yaml over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.request import urlopen

from devserver.local_defaults import LOCAL_DEV_SECRET
from devserver.mint_token import mint_token
from devserver.template import read_routes
from fakeopenai import FakeOpenAI, reply
from tests.devserver_process import call, post_raw, running_server

ROOT = Path(__file__).resolve().parents[2]


def _curl_session(base: str, token: str, user: str) -> None:
    status, _, task = call("POST", f"{base}/api/{user}/tasks", token=token, body={"title": "Milk"})
    assert status == 201
    assert isinstance(task, dict)
    status, _, tasks = call("GET", f"{base}/api/{user}/tasks", token=token)
    assert (status, [t["title"] for t in tasks]) == (200, ["Milk"])  # type: ignore[union-attr]
    status, _, done = call("PATCH", f"{base}/api/{user}/tasks/{task['id']}/complete", token=token)
    assert (status, done["completed"]) == (200, True)  # type: ignore[index]
    status, _, _ = call("DELETE", f"{base}/api/{user}/tasks/{task['id']}", token=token)
    assert status == 204
    status, _, tasks = call("GET", f"{base}/api/{user}/tasks", token=token)
    assert (status, tasks) == (200, [])


def _chat_session(base: str, token: str, user: str) -> None:
    """The README's chat session: add, list, complete, delete, then read the history back."""
    chat = f"{base}/api/{user}/chat"
    status, _, first = call("POST", chat, token=token, body={"message": "add buy milk"})
    assert status == 200, first
    assert isinstance(first, dict)
    conversation = first["conversation_id"]
    replies = [first["response"]]
    for message in ("list my tasks", "complete it", "delete it"):
        body = {"message": message, "conversation_id": conversation}
        status, _, reply = call("POST", chat, token=token, body=body)
        assert status == 200, reply
        replies.append(reply["response"])  # type: ignore[index]
    assert replies[0].startswith("Added “buy milk”")
    assert "buy milk" in replies[1]
    assert replies[2].startswith("Marked “buy milk”")
    assert replies[3].startswith("Deleted “buy milk”")
    status, _, page = call(
        "GET", f"{base}/api/{user}/conversations/{conversation}/messages", token=token
    )
    assert status == 200
    assert [m["role"] for m in page["items"]] == ["user", "assistant"] * 4  # type: ignore[index]
    status, _, conversations = call("GET", f"{base}/api/{user}/conversations", token=token)
    assert [c["id"] for c in conversations["items"]] == [conversation]  # type: ignore[index]


def test_devserver_serves_the_readme_session_on_postgres(
    app_environment: dict[str, str], tmp_path: Path, alice: str, token_for: Callable[..., str]
) -> None:
    with running_server(app_environment, tmp_path, "--no-migrate") as base:
        _curl_session(base, token_for(alice), alice)
        _chat_session(base, token_for(alice), alice)
        status, headers, _ = call("GET", f"{base}/api/{alice}/tasks")
        assert status == 401
        assert headers["www-authenticate"] == "Bearer"


def test_devserver_default_embedded_sqlite_needs_no_setup(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "", "BETTER_AUTH_SECRET": ""}
    with running_server(env, tmp_path) as base:
        assert call("GET", f"{base}/health")[0] == 200
        token = mint_token("alice", secret=LOCAL_DEV_SECRET)
        _curl_session(base, token, "alice")
        _chat_session(base, token, "alice")
    assert (tmp_path / ".local" / "todo.sqlite3").is_file()


def test_devserver_sqlite_replays_keyed_requests(tmp_path: Path) -> None:
    """The portable (SQLite) path of Idempotency-Key: a retry replays, stores nothing new."""
    env = {"DATABASE_URL": "", "BETTER_AUTH_SECRET": ""}
    with running_server(env, tmp_path) as base:
        token = mint_token("alice", secret=LOCAL_DEV_SECRET)
        tasks, chat = f"{base}/api/alice/tasks", f"{base}/api/alice/chat"
        first = post_raw(tasks, token=token, key="k1", body={"title": "Milk"})
        assert first[0] == 201
        assert post_raw(tasks, token=token, key="k1", body={"title": "Milk"}) == first
        assert post_raw(tasks, token=token, key="k1", body={"title": "Bread"})[0] == 422
        turn = post_raw(chat, token=token, key="k2", body={"message": "add eggs"})
        assert turn[0] == 200
        assert post_raw(chat, token=token, key="k2", body={"message": "add eggs"}) == turn
        status, _, listed = call("GET", tasks, token=token)
        assert (status, sorted(t["title"] for t in listed)) == (200, ["Milk", "eggs"])  # type: ignore[union-attr]
        status, _, page = call("GET", f"{base}/api/alice/conversations", token=token)
        assert len(page["items"]) == 1  # type: ignore[index]


def test_devserver_openapi_documents_every_template_route(
    app_environment: dict[str, str], tmp_path: Path
) -> None:
    with running_server(app_environment, tmp_path, "--no-migrate") as base:
        status, _, spec = call("GET", f"{base}/openapi.json")
        docs_status = urlopen(f"{base}/docs", timeout=10).status  # noqa: S310
    assert status == 200
    assert docs_status == 200
    assert isinstance(spec, dict)
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    declared = {(r.method, r.path) for r in read_routes(ROOT / "template.yaml")}
    assert documented == declared
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_devserver_unknown_route_and_method_are_api_gateway_404s(
    app_environment: dict[str, str], tmp_path: Path
) -> None:
    with running_server(app_environment, tmp_path, "--no-migrate") as base:
        unknown_path = call("GET", f"{base}/nope")
        wrong_method = call("POST", f"{base}/health")
    assert (unknown_path[0], unknown_path[2]) == (404, {"message": "Not Found"})
    assert (wrong_method[0], wrong_method[2]) == (404, {"message": "Not Found"})


def test_devserver_slow_model_turn_delays_no_other_request(
    app_environment: dict[str, str], tmp_path: Path, alice: str, token_for: Callable[..., str]
) -> None:
    token = token_for(alice)
    with FakeOpenAI(api_key="fake-key") as model:
        model.script(reply("Finally.", delay_seconds=3))
        environment = {
            **app_environment,
            "CHAT_ASSISTANT": "openai",
            "OPENAI_API_KEY": "fake-key",
            "OPENAI_BASE_URL": model.base_url,
            "CHAT_MODEL": "fake-model",
        }
        with (
            running_server(environment, tmp_path, "--no-migrate") as base,
            ThreadPoolExecutor(max_workers=2) as pool,
        ):
            call("GET", f"{base}/api/{alice}/tasks", token=token)  # warm the task function
            slow = pool.submit(
                call, "POST", f"{base}/api/{alice}/chat", token=token, body={"message": "hi"}
            )
            deadline = time.monotonic() + 5
            while not model.requests:  # the turn is now waiting on the model
                assert time.monotonic() < deadline, "the chat turn never reached the model"
                time.sleep(0.01)
            started = time.monotonic()
            second_chat = pool.submit(
                call, "POST", f"{base}/api/{alice}/chat", token=token, body={"message": "list"}
            )
            status, _, _ = call(
                "POST", f"{base}/api/{alice}/tasks", token=token, body={"title": "x"}
            )
            task_seconds = time.monotonic() - started
            assert status == 201
            assert task_seconds < 1.0, task_seconds  # not behind the 3-second model call
            assert not slow.done()
            assert second_chat.result(timeout=10)[0] == 200  # another chat container served it
            assert slow.result(timeout=10)[0] == 200
