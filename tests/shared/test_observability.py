"""Logs and metrics of real handler invocations, read from a real process's stdout as CloudWatch
would: JSON lines, the API Gateway request id as correlation id, EMF metrics, and never a token,
a secret or anything the caller sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc, text

from devserver.events import http_api_event
from todo_core.db import get_engine

ROOT = Path(__file__).resolve().parents[2]
CANARY = "CANARY-7f3a9c"  # appears in every body, header and query string the caller sends

# Invokes each (function, event) pair of a JSON file with the function's real handler, in one
# process: a container, cold for its first invocation and warm after.
DRIVER = """
import importlib.util, json, sys
sys.path[:0] = [sys.argv[2] + "/infra"]
from devserver.events import LambdaContext
modules = {}
for function, directory, event in json.load(open(sys.argv[1])):
    if function not in modules:
        spec = importlib.util.spec_from_file_location("fn_" + function, directory + "/app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules[function] = module
    response = modules[function].handler(event, LambdaContext(function_name=function))
    print(json.dumps({"test_response": response["statusCode"]}), file=sys.stderr)
"""


def _event(method: str, path: str, route_key: str, token: str, body: bytes | None) -> Any:
    user_id = path.split("/")[2]
    return http_api_event(
        method=method,
        raw_path=path,
        route_key=route_key,
        path_parameters={"user_id": user_id},
        raw_query=f"token={CANARY}",  # a token sent in the URL: no route reads it, none logs it
        headers={
            "authorization": f"Bearer {token}",
            "content-type": "application/json",
            "x-canary": CANARY,
            "cookie": f"session={CANARY}",
        },
        body=body,
    )


def _run(
    invocations: list[tuple[str, str, Any]], environment: dict[str, str], tmp_path: Path
) -> tuple[list[dict[str, Any]], str, list[int]]:
    events_file = tmp_path / "invocations.json"
    events_file.write_text(json.dumps(invocations))
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, str(events_file), str(ROOT)],
        env={
            **os.environ,
            **environment,
            "PYTHONPATH": str(ROOT / "shared"),
            "POWERTOOLS_SERVICE_NAME": "todo-api",
            "POWERTOOLS_METRICS_NAMESPACE": "TodoApiTest",
            "POWERTOOLS_LOG_LEVEL": "DEBUG",  # the most the logs could ever say
        },
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    statuses = [
        json.loads(line)["test_response"]
        for line in result.stderr.splitlines()
        if line.startswith('{"test_response"')
    ]
    return lines, result.stdout + result.stderr, statuses


def test_logs_and_metrics_of_real_invocations(
    app_environment: dict[str, str],
    tmp_path: Path,
    alice: str,
    token_for: Callable[..., str],
) -> None:
    token = token_for(alice)
    tasks = f"/api/{alice}/tasks"
    create = ("CreateTaskFunction", str(ROOT / "functions" / "create_task"))
    listing = ("ListTasksFunction", str(ROOT / "functions" / "list_tasks"))
    good = json.dumps({"title": f"Call {CANARY}", "description": f"pin {CANARY}"}).encode()
    bad = f'{{"title": "{CANARY}", "description": 5}}'.encode()  # 422, echoes input to caller
    forged = token_for(alice)[:-4] + "AAAA"
    events = [
        _event("POST", tasks, "POST /api/{user_id}/tasks", token, good),
        _event("POST", tasks, "POST /api/{user_id}/tasks", token, bad),
        _event("POST", tasks, "POST /api/{user_id}/tasks", forged, good),
        _event("GET", tasks, "GET /api/{user_id}/tasks", token, None),
    ]
    invocations = [(*create, events[0]), (*create, events[1]), (*create, events[2])]
    lines, output, statuses = _run(invocations, app_environment, tmp_path)
    more_lines, more_output, more_statuses = _run(
        [(*listing, events[3])], app_environment, tmp_path
    )
    invocations.append((*listing, events[3]))
    lines, output, statuses = lines + more_lines, output + more_output, statuses + more_statuses

    assert statuses == [201, 422, 401, 200]
    secret = app_environment["BETTER_AUTH_SECRET"]
    for sensitive in (token, forged, token.split(".")[2], CANARY, secret):
        assert sensitive not in output
    assert "Call " not in output
    assert app_environment["DATABASE_URL"] not in output

    requests = [line for line in lines if line.get("message") == "request"]
    assert [r["correlation_id"] for r in requests] == [
        e["requestContext"]["requestId"] for e in events
    ]
    assert [r["status"] for r in requests] == statuses
    assert [r["function_name"] for r in requests] == [i[0] for i in invocations]
    assert [r["cold_start"] for r in requests] == [True, False, False, True]
    assert {r["service"] for r in requests} == {"todo-api"}
    assert requests[0]["route_key"] == "POST /api/{user_id}/tasks"
    assert requests[0]["http_method"] == "POST"
    assert isinstance(requests[0]["duration_ms"], float)

    emf = [line for line in lines if "_aws" in line]
    namespaces = {m["Namespace"] for line in emf for m in line["_aws"]["CloudWatchMetrics"]}
    assert namespaces == {"TodoApiTest"}
    assert [line["TasksCreated"] for line in emf if "TasksCreated" in line] == [[1.0]]
    cold_starts = sorted(line["function_name"] for line in emf if "ColdStart" in line)
    assert cold_starts == ["CreateTaskFunction", "ListTasksFunction"]
    assert len(lines) == len(requests) + len(emf)  # nothing else, and every line is JSON


def test_database_errors_show_the_sql_but_never_its_values(api: object) -> None:
    """The engine the functions use hides bound parameters: a failed statement's error (which
    a log line or a traceback might one day carry) names the SQL, never the user's data."""
    with get_engine().connect() as connection, pytest.raises(exc.DBAPIError) as raised:
        connection.execute(
            text("SELECT 1 / 0 WHERE CAST(:content AS text) IS NOT NULL"), {"content": CANARY}
        )
    assert "SELECT 1 / 0" in str(raised.value)
    assert CANARY not in str(raised.value)


def test_chat_logs_carry_no_message_content(
    app_environment: dict[str, str],
    tmp_path: Path,
    alice: str,
    token_for: Callable[..., str],
) -> None:
    token = token_for(alice)
    chat = ("ChatFunction", str(ROOT / "functions" / "chat"))
    route = "POST /api/{user_id}/chat"
    path = f"/api/{alice}/chat"
    events = [
        _event("POST", path, route, token, json.dumps({"message": f"add {CANARY}"}).encode()),
        _event("POST", path, route, token, json.dumps({"message": f"say {CANARY}"}).encode()),
        _event("POST", path, route, token, json.dumps({"message": f"hi {CANARY}"}).encode()),
        _event("POST", path, route, token, json.dumps({"message": CANARY * 2000}).encode()),
    ]
    # An oversized message is a 422 whose input is not logged; with CHAT_ASSISTANT naming no
    # assistant, a turn is a 500 "Server misconfigured", the log naming the setting, not the
    # message.
    lines, output, statuses = _run(
        [(*chat, e) for e in (events[0], events[1], events[3])], app_environment, tmp_path
    )
    bad_lines, bad_output, bad_statuses = _run(
        [(*chat, events[2])], {**app_environment, "CHAT_ASSISTANT": "missing"}, tmp_path
    )
    assert statuses == [200, 200, 422]
    assert bad_statuses == [500]
    everything = output + bad_output
    assert CANARY not in everything
    assert token not in everything
    requests = [line for line in lines + bad_lines if line.get("message") == "request"]
    assert [r["status"] for r in requests] == [200, 200, 422, 500]
    assert any("CHAT_ASSISTANT" in line.get("message", "") for line in bad_lines)
    turns = [line["ChatTurns"] for line in lines if "ChatTurns" in line]
    assert turns == [[1.0], [1.0]]


# Imports the health function as Lambda's init does (AWS_LAMBDA_FUNCTION_NAME is set, so the
# warm-up runs), marks the end of init on stdout, serves two events; in "restore" mode it then
# runs SnapStart's after-restore hooks (as a restored environment would) and serves once more.
COLD_START_DRIVER = """
import asyncio, importlib.util, json, sys
import snapshot_restore_py
sys.path[:0] = [sys.argv[2] + "/infra"]
from devserver.events import LambdaContext
spec = importlib.util.spec_from_file_location("health", sys.argv[2] + "/functions/health/app.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({"marker": "init done"}), flush=True)
asyncio.set_event_loop(asyncio.new_event_loop())
event = json.loads(sys.argv[1])
context = LambdaContext(function_name="HealthFunction")
for _ in range(2):
    module.handler(event, context)
if sys.argv[3] == "restore":
    print(json.dumps({"marker": "restored"}), flush=True)
    for hook, args, kwargs in snapshot_restore_py.get_after_restore():
        hook(*args, **kwargs)
    module.handler(event, context)
"""


def _container_start(initialization: str | None, mode: str) -> list[str]:
    """What a container prints, in order: a ColdStart metric (with its function), the markers,
    a request's log line."""
    event = http_api_event(method="GET", raw_path="/health", route_key="GET /health")
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "shared")}
    environment["AWS_LAMBDA_FUNCTION_NAME"] = "HealthFunction"
    environment.pop("AWS_LAMBDA_INITIALIZATION_TYPE", None)
    if initialization is not None:
        environment["AWS_LAMBDA_INITIALIZATION_TYPE"] = initialization
    result = subprocess.run(
        [sys.executable, "-c", COLD_START_DRIVER, json.dumps(event), str(ROOT), mode],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    seen = []
    for line in map(json.loads, result.stdout.splitlines()):
        if "ColdStart" in line:
            seen.append(f"ColdStart {line['function_name']}")
        elif "marker" in line:
            seen.append(line["marker"])
        elif line.get("message") == "request":
            seen.append("request")
    return seen


def test_cold_start_metric_is_published_at_init_once() -> None:
    for initialization in (None, "on-demand"):
        assert _container_start(initialization, "serve") == [
            "ColdStart HealthFunction",
            "init done",
            "request",
            "request",
        ]


def test_no_cold_start_metric_for_provisioned_concurrency() -> None:
    assert _container_start("provisioned-concurrency", "serve") == [
        "init done",
        "request",
        "request",
    ]


def test_snapstart_publishes_the_cold_start_of_each_restore_not_of_the_snapshot() -> None:
    assert _container_start("snap-start", "restore") == [
        "init done",
        "request",
        "request",
        "restored",
        "ColdStart HealthFunction",
        "request",
    ]
