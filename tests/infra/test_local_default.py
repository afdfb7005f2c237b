"""What `make run` serves with no configuration: the local server on its embedded PostgreSQL,
as a real process over HTTP, including two of them on one data directory."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devserver.local_defaults import LOCAL_DEV_SECRET
from devserver.mint_token import mint_token
from tests.devserver_process import (
    call,
    post_raw,
    readme_chat_session,
    readme_task_session,
    running_server,
)


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_until_stopped(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_running(pid):
            return True
        time.sleep(0.1)
    return False


def test_local_default_serves_on_embedded_postgres_and_stops_it(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    env = {"DATABASE_URL": "", "BETTER_AUTH_SECRET": "", "LOCAL_PGDATA": str(pgdata)}
    token = mint_token("alice", secret=LOCAL_DEV_SECRET)
    with running_server(env, tmp_path / "first") as first:
        assert call("GET", f"{first}/health?check_database=true")[2] == {
            "status": "ok",
            "database": "ok",
        }
        readme_task_session(first, token, "alice")
        readme_chat_session(first, token, "alice")
        eggs = {"title": "Eggs"}
        keyed = post_raw(f"{first}/api/alice/tasks", token=token, key="k1", body=eggs)
        assert keyed[0] == 201
        postgres = _postmaster_pid(pgdata)
        # A second `make run` on the same data joins the running server (and migrates nothing).
        with running_server(env, tmp_path / "second") as second:
            replayed = post_raw(f"{second}/api/alice/tasks", token=token, key="k1", body=eggs)
            assert replayed == keyed
            assert _postmaster_pid(pgdata) == postgres
        # The second one left; the server is still up for the first one.
        status, _, tasks = call("GET", f"{first}/api/alice/tasks", token=token)
        assert (status, [t["title"] for t in tasks]) == (200, ["Eggs"])  # type: ignore[union-attr]
    # The last one to leave stopped it.
    assert _wait_until_stopped(postgres), "the embedded PostgreSQL is still running"
    assert not (pgdata / "postmaster.pid").exists()


def test_local_default_restarts_on_its_data_and_answers_in_utc(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    # initdb takes the machine's time zone; the API's timestamps stay in UTC whatever it is.
    env = {
        "DATABASE_URL": "",
        "BETTER_AUTH_SECRET": "",
        "LOCAL_PGDATA": str(pgdata),
        "TZ": "Europe/Paris",
    }
    token = mint_token("bob", secret=LOCAL_DEV_SECRET)
    with running_server(env, tmp_path / "run") as base:
        status, _, task = call("POST", f"{base}/api/bob/tasks", token=token, body={"title": "Kept"})
        assert status == 201
        assert task["created_at"].endswith("Z"), task  # type: ignore[index]
        replay = post_raw(f"{base}/api/bob/tasks", token=token, key="k", body={"title": "Once"})
        assert replay[0] == 201
        assert b"+01:00" not in replay[1], replay
    with running_server(env, tmp_path / "run") as base:
        status, _, tasks = call("GET", f"{base}/api/bob/tasks", token=token)
    assert (status, [t["title"] for t in tasks]) == (200, ["Once", "Kept"])  # type: ignore[union-attr]
    assert task in tasks  # type: ignore[operator]


def test_local_default_two_first_runs_at_once_share_one_server_and_schema(tmp_path: Path) -> None:
    """Two `make run` started together on a new data directory: one initdb, one server, the
    migrations applied once (the second waits for the first's advisory lock)."""
    pgdata = tmp_path / "pgdata"
    env = {"DATABASE_URL": "", "BETTER_AUTH_SECRET": "", "LOCAL_PGDATA": str(pgdata)}
    token = mint_token("carol", secret=LOCAL_DEV_SECRET)
    servers = [running_server(env, tmp_path / name) for name in ("a", "b")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        bases = list(pool.map(lambda server: server.__enter__(), servers))
    try:
        for n, base in enumerate(bases):
            body = {"title": f"from {n}"}
            assert call("POST", f"{base}/api/carol/tasks", token=token, body=body)[0] == 201
        status, _, tasks = call("GET", f"{bases[0]}/api/carol/tasks", token=token)
        assert (status, len(tasks)) == (200, 2)  # type: ignore[arg-type]
        postgres = _postmaster_pid(pgdata)
    finally:
        for server in reversed(servers):
            server.__exit__(None, None, None)
    assert _wait_until_stopped(postgres)
