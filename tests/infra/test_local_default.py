"""What `make run` serves with no configuration: the local server on its embedded PostgreSQL,
as a real process over HTTP, including two of them on one data directory."""

from __future__ import annotations

import os
import time
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


def test_local_default_restarts_on_its_data(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    env = {"DATABASE_URL": "", "BETTER_AUTH_SECRET": "", "LOCAL_PGDATA": str(pgdata)}
    token = mint_token("bob", secret=LOCAL_DEV_SECRET)
    with running_server(env, tmp_path / "run") as base:
        status, _, task = call("POST", f"{base}/api/bob/tasks", token=token, body={"title": "Kept"})
        assert status == 201
    with running_server(env, tmp_path / "run") as base:
        status, _, tasks = call("GET", f"{base}/api/bob/tasks", token=token)
    assert (status, tasks) == (200, [task])
