"""The local server end to end: a real process serving template.yaml over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.request import urlopen

import psycopg
import pytest

from devserver.template import read_routes
from fakeopenai import FakeOpenAI, reply
from tests.devserver_process import call, readme_chat_session, readme_task_session, running_server

ROOT = Path(__file__).resolve().parents[2]


def test_devserver_serves_the_readme_session_on_postgres(
    app_environment: dict[str, str], tmp_path: Path, alice: str, token_for: Callable[..., str]
) -> None:
    with running_server(app_environment, tmp_path, "--no-migrate") as base:
        readme_task_session(base, token_for(alice), alice)
        readme_chat_session(base, token_for(alice), alice)
        status, headers, _ = call("GET", f"{base}/api/{alice}/tasks")
        assert status == 401
        assert headers["www-authenticate"] == "Bearer"


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


def test_devserver_chat_with_the_fake_model_as_the_readme_shows(
    app_environment: dict[str, str], tmp_path: Path, alice: str, token_for: Callable[..., str]
) -> None:
    token = token_for(alice)
    with FakeOpenAI(api_key="fake-key") as model:
        environment = {
            **app_environment,
            "CHAT_ASSISTANT": "openai",
            "OPENAI_BASE_URL": model.base_url,
            "OPENAI_API_KEY": "fake-key",
            "CHAT_MODEL": "fake-model",
        }
        with running_server(environment, tmp_path, "--no-migrate") as base:
            chat = f"{base}/api/{alice}/chat"
            status, _, first = call("POST", chat, token=token, body={"message": "add buy milk"})
            assert status == 200, first
            conversation = first["conversation_id"]  # type: ignore[index]
            replies = [first["response"]]  # type: ignore[index]
            for message in ("list my tasks", "complete it", "delete it"):
                body = {"message": message, "conversation_id": conversation}
                status, _, answer = call("POST", chat, token=token, body=body)
                assert status == 200, answer
                replies.append(answer["response"])  # type: ignore[index]
            status, _, tasks = call("GET", f"{base}/api/{alice}/tasks", token=token)
    assert replies[0].startswith("Created “buy milk”")
    assert "buy milk" in replies[1]
    assert replies[2].startswith("Completed “buy milk”")
    assert replies[3].startswith("Deleted “buy milk”")
    assert (status, tasks) == (200, [])


def test_devserver_serves_eight_requests_at_once_each_on_its_own_connection(
    app_environment: dict[str, str],
    direct_url: str,
    tmp_path: Path,
    alice: str,
    token_for: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README: the local server plays eight containers per function in one process, so it sets
    ``DB_POOL_SIZE`` to 8: eight requests held up by the database each hold a connection of
    their own, and none waits for another's (with a pool of one, seven would time out: 503)."""
    monkeypatch.delenv("DB_POOL_SIZE", raising=False)
    environment = {**app_environment, "DATABASE_URL": direct_url}
    token = token_for(alice)
    waiting_on_the_lock = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = 'todo-api' AND wait_event_type = 'Lock'"
    )
    with running_server(environment, tmp_path, "--no-migrate") as base:
        assert call("GET", f"{base}/api/{alice}/tasks", token=token)[0] == 200
        with (
            psycopg.connect(direct_url) as locker,
            ThreadPoolExecutor(max_workers=8) as pool,
        ):
            locker.execute("LOCK TABLE task IN ACCESS EXCLUSIVE MODE")
            calls = [
                pool.submit(call, "GET", f"{base}/api/{alice}/tasks", token=token) for _ in range(8)
            ]
            with psycopg.connect(direct_url, autocommit=True) as observer:
                deadline = time.monotonic() + 4  # the database cancels a statement at 5 s
                waiting = 0
                while waiting < 8 and time.monotonic() < deadline:
                    time.sleep(0.05)
                    row = observer.execute(waiting_on_the_lock).fetchone()
                    waiting = row[0] if row else 0
            locker.rollback()
            statuses = [future.result()[0] for future in calls]
    assert waiting == 8, f"{waiting} of 8 requests reached the database at once"
    assert statuses == [200] * 8
