"""SnapStart's hooks, through a real function in a fresh process: the process initialises (and
serves once, so that it holds a connection), runs the before-snapshot hooks, then forks as a
restore would; the child runs the after-restore hooks and serves. The connection does not survive
the snapshot, the restored process opens its own, draws its own random numbers, has no cached
secret and serves correctly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import event_for, new_user_id, routes

ROOT = Path(__file__).resolve().parents[2]

_SNAPSHOT_AND_RESTORE = """
import asyncio, importlib.util, json, os, random, sys
import snapshot_restore_py
event = json.loads(sys.argv[2])
spec = importlib.util.spec_from_file_location("function", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from todo_core.db import get_engine
class Context:
    function_name = "get_task"
    memory_limit_in_mb = 256
    aws_request_id = "snapstart-test"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:get_task"
    def get_remaining_time_in_millis(self):
        return 10_000
from sqlalchemy import event as sa_event
connects = []  # the process that opened each DBAPI connection (a pooler hides the backend's pid)
sa_event.listen(get_engine(), "connect", lambda *args: connects.append(os.getpid()))
asyncio.set_event_loop(asyncio.new_event_loop())
parent = {"status": module.handler(event, Context())["statusCode"]}
parent["connections"] = connects.count(os.getpid())
# A secret read before the snapshot, in Powertools' cache (as with DATABASE_URL_PARAMETER).
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
class Provider:
    def __init__(self):
        self.store = {"/todo-api/dev/database-url": "a value with its age"}
    def clear_cache(self):
        self.store.clear()
DEFAULT_PROVIDERS["ssm"] = Provider()
# A logging key of the snapshotted environment (as a request's correlation id would be).
from todo_core.observability import logger
logger.append_keys(correlation_id="snapshotted-request")
# "connection-left-open": a connection outlives the before-snapshot hooks (a hook that failed,
# or one made after them); the after-restore hooks alone must keep it out of the restored process.
if sys.argv[3] != "connection-left-open":
    for hook, args, kwargs in snapshot_restore_py.get_before_snapshot():
        hook(*args, **kwargs)
pool = get_engine().pool
parent["connections_after_snapshot_hooks"] = pool.checkedin() + pool.checkedout()
snapshot_random = random.getstate()
reader, writer = os.pipe()
child = os.fork()
if child == 0:
    # A restore is not a fork: CPython reseeds random in a forked child, a restore would not.
    random.setstate(snapshot_random)
    for hook, args, kwargs in snapshot_restore_py.get_after_restore():
        hook(*args, **kwargs)
    restored = {
        "cached_secrets": len(DEFAULT_PROVIDERS["ssm"].store),
        "logger_keys_kept": "correlation_id" in logger.get_current_keys(),
        "random": random.random(),
        "status": module.handler(event, Context())["statusCode"],
        "connections": connects.count(os.getpid()),
    }
    os.write(writer, json.dumps(restored).encode())
    os._exit(0)
os.close(writer)
restored = json.loads(os.read(reader, 65536))
os.waitpid(child, 0)
random.setstate(snapshot_random)
parent["random"] = random.random()
print(json.dumps({"parent": parent, "restored": restored}))
"""


def _snapshot_and_restore(
    environment: dict[str, str], token_for: Callable[..., str], mode: str
) -> dict[str, Any]:
    user_id = new_user_id()
    event: dict[str, Any] = event_for(
        routes()["list_tasks"], path=f"/api/{user_id}/tasks", user_id=None
    )
    event["headers"]["authorization"] = f"Bearer {token_for(user_id)}"
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            _SNAPSHOT_AND_RESTORE,
            str(ROOT / "functions" / "list_tasks" / "app.py"),
            json.dumps(event),
            mode,
        ],
        env={
            **os.environ,
            **environment,
            "AWS_LAMBDA_FUNCTION_NAME": "list_tasks",
            "PYTHONPATH": str(ROOT / "shared"),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def test_snapstart_restored_process_opens_its_own_connection_and_serves(
    app_environment: dict[str, str], token_for: Callable[..., str]
) -> None:
    result = _snapshot_and_restore(app_environment, token_for, "hooks")
    parent, restored = result["parent"], result["restored"]
    assert parent["status"] == restored["status"] == 200
    assert parent["connections_after_snapshot_hooks"] == 0
    assert parent["connections"] == 1
    assert restored["connections"] == 1  # the restored process opened its own
    assert restored["random"] != parent["random"]
    # The secret cache was emptied (its client kept): the next request reads the secrets again.
    assert restored["cached_secrets"] == 0
    assert restored["logger_keys_kept"] is False  # the restore hook's own log lines are clean


def test_snapstart_restore_drops_a_connection_the_snapshot_kept(
    app_environment: dict[str, str], token_for: Callable[..., str]
) -> None:
    result = _snapshot_and_restore(app_environment, token_for, "connection-left-open")
    parent, restored = result["parent"], result["restored"]
    assert parent["connections_after_snapshot_hooks"] == 1  # in the snapshot
    assert restored["status"] == 200
    assert restored["connections"] == 1  # not the snapshot's socket: one of its own
