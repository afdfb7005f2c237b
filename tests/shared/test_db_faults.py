"""Database faults, through the real handlers: an unreachable database is a quick 503 and the
function recovers by itself; a connection dropped between invocations (killed backend, pooler
restart, network cut) is replaced transparently; a statement that runs too long is a 503; a
failure in the middle of a chat turn never leaves a reply without its question."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devserver.pgbouncer import PgBouncer, dedicated_pgbouncer
from tests.api_client import ApiClient, Response
from tests.conftest import functions_environment
from tests.polling import wait_until
from tests.tcp_proxy import FaultyProxy
from todo_core.chat import assistant as assistant_module
from todo_core.chat.tools import TaskTools
from todo_core.chat.types import AssistantReply
from todo_core.db import get_engine

ROOT = Path(__file__).resolve().parents[2]


def functions_using(url: str) -> AbstractContextManager[dict[str, str]]:
    """Point the functions at ``url`` (as a new deployment would), then back."""
    return functions_environment({"DATABASE_URL": url})


@pytest.fixture
def proxy(database_name: str) -> Iterator[FaultyProxy]:
    faulty = FaultyProxy(("127.0.0.1", 5432))
    with functions_using(f"postgresql://postgres@127.0.0.1:{faulty.port}/{database_name}"):
        yield faulty
    faulty.close()


def _backend_pid() -> int:
    with get_engine().connect() as connection:
        pid: int = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    return pid


def _backend_alive(admin: psycopg.Connection[Any], pid: int) -> bool:
    row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row is not None and row[0] > 0


def _pgbouncer_server_pids(bouncer: PgBouncer) -> set[int]:
    """The backends PgBouncer holds server connections to (its admin console's SHOW SERVERS)."""
    console = f"postgresql://postgres@127.0.0.1:{bouncer.port}/pgbouncer"
    with psycopg.connect(console, autocommit=True, cursor_factory=psycopg.ClientCursor) as admin:
        cursor = admin.execute("SHOW SERVERS")
        names = [column.name for column in cursor.description or []]
        return {int(row[names.index("remote_pid")]) for row in cursor.fetchall()}


def _is_json_503(response: Response) -> bool:
    return (
        response.status == 503
        and response.headers["content-type"] == "application/json"
        and "detail" in response.json()
        and "retry-after" in response.headers
    )


def test_db_fault_refused_is_503_at_once_and_recovers(
    api: ApiClient,
    proxy: FaultyProxy,
    alice: str,
    token_for: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert api.get(f"/api/{alice}/tasks", token=token_for(alice)).status == 200
    proxy.mode = "refuse"
    proxy.sever()
    started = time.monotonic()
    response = api.get(f"/api/{alice}/tasks", token=token_for(alice))
    assert _is_json_503(response), response.body
    assert time.monotonic() - started < 3
    # Logged by type: the driver's message names the host and port.
    assert "database unavailable: OperationalError" in caplog.text
    assert str(proxy.port) not in caplog.text
    proxy.mode = "up"
    assert api.get(f"/api/{alice}/tasks", token=token_for(alice)).status == 200


def test_db_fault_health_check_database_pings_it(api: ApiClient, proxy: FaultyProxy) -> None:
    """``/health?check_database=true`` answers for the database: 503 while it is down (plain
    ``/health`` does not touch it and stays 200), ok once it is back."""
    assert api.get("/health", params={"check_database": "true"}).status == 200
    proxy.mode = "refuse"
    proxy.sever()
    response = api.get("/health", params={"check_database": "true"})
    assert _is_json_503(response), response.body
    assert api.get("/health").json() == {"status": "ok", "database": "not checked"}
    proxy.mode = "up"
    checked = api.get("/health", params={"check_database": "true"})
    assert checked.json() == {"status": "ok", "database": "ok"}


def test_db_fault_unreachable_is_503_within_3_seconds_and_recovers(
    api: ApiClient, proxy: FaultyProxy, alice: str, token_for: Callable[..., str]
) -> None:
    proxy.mode = "blackhole"
    proxy.sever()
    started = time.monotonic()
    response = api.post(f"/api/{alice}/tasks", token=token_for(alice), json_body={"title": "x"})
    elapsed = time.monotonic() - started
    assert _is_json_503(response), response.body
    assert elapsed < 3, elapsed
    proxy.mode = "up"
    created = api.post(f"/api/{alice}/tasks", token=token_for(alice), json_body={"title": "x"})
    assert created.status == 201
    titles = [t["title"] for t in api.get(f"/api/{alice}/tasks", token=token_for(alice)).json()]
    assert titles == ["x"]  # the failed attempt stored nothing


def test_db_fault_connection_pool_exhausted_is_503_not_500(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    assert api.get(f"/api/{alice}/tasks", token=token_for(alice)).status == 200
    # Something holds the container's one connection: the request waits for the pool's timeout.
    with get_engine().connect():
        started = time.monotonic()
        response = api.get(f"/api/{alice}/tasks", token=token_for(alice))
    assert _is_json_503(response), response.body
    assert time.monotonic() - started < 4
    assert api.get(f"/api/{alice}/tasks", token=token_for(alice)).status == 200


def test_db_fault_network_cut_between_invocations_is_transparent(
    api: ApiClient, proxy: FaultyProxy, alice: str, token_for: Callable[..., str]
) -> None:
    assert api.get(f"/api/{alice}/tasks", token=token_for(alice)).status == 200
    proxy.sever()  # the pooled connection is dead; the server is still there
    assert api.get(f"/api/{alice}/tasks", token=token_for(alice)).status == 200


def test_db_fault_terminated_backend_is_replaced_transparently(
    api: ApiClient, direct_url: str, alice: str, token_for: Callable[..., str]
) -> None:
    with functions_using(direct_url):
        assert api.get(f"/api/{alice}/tasks", token=token_for(alice)).status == 200
        first = _backend_pid()
        with psycopg.connect(direct_url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (first,)).fetchone() == (True,)
            # A backend sends its termination notice before it exits: once it is gone, the
            # notice is waiting on the function's idle connection.
            wait_until(lambda: not _backend_alive(admin, first))
        assert api.get(f"/api/{alice}/tasks", token=token_for(alice)).status == 200
        assert _backend_pid() != first


@pytest.fixture
def pgbouncer() -> Iterator[PgBouncer]:
    """A transaction-mode PgBouncer of this test's own, to kill and restart at will."""
    with dedicated_pgbouncer() as bouncer:
        yield bouncer


def test_db_fault_pgbouncer_server_connections_killed_is_transparent(
    api: ApiClient,
    pgbouncer: PgBouncer,
    database_name: str,
    direct_url: str,
    alice: str,
    token_for: Callable[..., str],
) -> None:
    with functions_using(pgbouncer.url(database_name)):
        assert api.get(f"/api/{alice}/tasks", token=token_for(alice)).status == 200
        with psycopg.connect(direct_url, autocommit=True) as admin:
            killed = [
                pid
                for pid, terminated in admin.execute(
                    "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database_name,),
                )
                if terminated
            ]
        assert killed
        # PgBouncer drops a server connection once it reads the backend's goodbye.
        wait_until(lambda: not set(killed) & _pgbouncer_server_pids(pgbouncer))
        for _ in range(3):
            assert api.get(f"/api/{alice}/tasks", token=token_for(alice)).status == 200


def test_db_fault_pgbouncer_restart_is_transparent(
    api: ApiClient,
    pgbouncer: PgBouncer,
    database_name: str,
    alice: str,
    token_for: Callable[..., str],
) -> None:
    with functions_using(pgbouncer.url(database_name)):
        assert api.get(f"/api/{alice}/tasks", token=token_for(alice)).status == 200
        pgbouncer.stop()
        pgbouncer.start()
        assert api.get(f"/api/{alice}/tasks", token=token_for(alice)).status == 200


def test_db_fault_statement_timeout_is_503_not_a_hang(
    api: ApiClient,
    direct_url: str,
    alice: str,
    token_for: Callable[..., str],
    make_task: Callable[..., dict[str, Any]],
) -> None:
    task = make_task(alice, "locked")
    with psycopg.connect(direct_url) as locker:
        # Another session holds the row: the update waits until the database's statement
        # timeout (migration 0003, 5 s) cancels it.
        locker.execute("SELECT id FROM task WHERE id = %s FOR UPDATE", (task["id"],))
        started = time.monotonic()
        response = api.put(
            f"/api/{alice}/tasks/{task['id']}", token=token_for(alice), json_body={"title": "y"}
        )
        elapsed = time.monotonic() - started
        locker.rollback()
    assert _is_json_503(response), response.body
    assert 4 < elapsed < 9, elapsed
    unchanged = api.get(f"/api/{alice}/tasks/{task['id']}", token=token_for(alice)).json()
    assert unchanged["title"] == "locked"


class _AssistantThatLosesTheDatabase:
    def __init__(self, proxy: FaultyProxy) -> None:
        self.proxy = proxy

    def reply(self, history: object, message: str, *, user_id: str) -> AssistantReply:
        self.proxy.mode = "refuse"
        self.proxy.sever()
        return AssistantReply("this reply can never be stored")


def test_db_fault_mid_turn_leaves_the_question_alone(
    api: ApiClient,
    proxy: FaultyProxy,
    direct_url: str,
    alice: str,
    send_chat: Callable[..., Response],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conversation = send_chat(alice, "add buy milk").json()["conversation_id"]

    def factory(tools: TaskTools) -> _AssistantThatLosesTheDatabase:
        return _AssistantThatLosesTheDatabase(proxy)

    with monkeypatch.context() as patch:
        patch.setitem(assistant_module.ASSISTANTS, "builtin", factory)
        response = send_chat(alice, "list my tasks", conversation)
    assert _is_json_503(response), response.body
    proxy.mode = "up"
    with psycopg.connect(direct_url) as connection:
        rows = connection.execute(
            "SELECT role, content, reply_to_id IS NOT NULL FROM message"
            " WHERE conversation_id = %s ORDER BY coalesce(reply_to_id, id), id",
            (conversation,),
        ).fetchall()
    assert [(role, content) for role, content, _ in rows] == [
        ("user", "add buy milk"),
        ("assistant", rows[1][1]),
        ("user", "list my tasks"),
    ]
    # The conversation goes on; the unanswered question stays in the history.
    follow_up = send_chat(alice, "list my tasks", conversation)
    assert follow_up.status == 200
