"""The init-phase warm-up, through real function modules in fresh processes: in Lambda every
function's first request imports nothing, compiles nothing and sends no dialect startup query;
importing never connects, so an unreachable database is still a clear 503 on the request, not an
init error."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastapi.routing
import jwt
import psycopg
import pytest
from bench.harness import event_for, new_user_id, routes
from bench.wire_counter import CountingProxy

from devserver.template import import_function
from tests.conftest import functions_environment
from todo_core import deps
from todo_core.settings import WARM_UP_SIGNING_KEY
from todo_core.warmup import (
    PRIME_REQUESTS,
    PRIME_SUBJECT,
    PRIME_TOKEN,
    UTC_ZONE_NAMES,
    expected_prime_status,
    prime_request_path,
    unexpected_prime_statuses,
)

ROOT = Path(__file__).resolve().parents[2]

# Imports a function's module, serves two events, and reports what each request added to
# sys.modules, the dialect's startup facts, and whether importing made a connection.
_FIRST_REQUESTS = """
import asyncio, json, sys
import importlib.util
event = json.loads(sys.argv[2])
spec = importlib.util.spec_from_file_location("function", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
jwt_at_import = "jwt" in sys.modules
from todo_core.db import get_engine
pool = get_engine().pool
connections_at_import = pool.checkedin() + pool.checkedout()
from sqlalchemy import Connection
from sqlmodel import Session
dispatchers_at_import = [cls in cls.dispatch._empty_listener_reg for cls in (Connection, Session)]
import gc
frozen_at_import = gc.get_freeze_count()
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
cache = get_engine()._compiled_cache
precompiled = {key: compiled.string for key, compiled in cache.items()}
import psycopg._conninfo_utils
connection_defaults_at_import = len(psycopg._conninfo_utils.get_param_def.__defaults__[0])
asyncio.set_event_loop(asyncio.new_event_loop())
class Context:
    function_name = "function"
    memory_limit_in_mb = 256
    aws_request_id = "warm-up-test"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:function"
    def get_remaining_time_in_millis(self):
        return 10_000
import fastapi.dependencies.models as dependency_models
import fastapi.routing
def classification_misses():
    kinds = ("gen", "async_gen", "coroutine")
    names = [f"_is_{kind}_callable_cached" for kind in kinds]
    return [getattr(dependency_models, name).cache_info().misses for name in names]
misses_at_import = classification_misses()
contexts = fastapi.routing._endpoint_context_cache
endpoint_contexts_at_import = len(contexts)
import zoneinfo._common
zone_files_read = []
load_zone_file = zoneinfo._common.load_data
def counting_load_data(*args):
    zone_files_read.append(1)
    return load_zone_file(*args)
zoneinfo._common.load_data = counting_load_data
statuses, new_modules, cache_sizes = [], [], []
for _ in range(2):
    before = set(sys.modules)
    statuses.append(module.handler(event, Context())["statusCode"])
    new_modules.append(sorted(set(sys.modules) - before))
    cache_sizes.append(len(cache))
dialect = get_engine().dialect
try:  # the connection's, as the server reported it
    time_zone = get_engine().raw_connection().driver_connection.info.parameter_status("TimeZone")
except Exception:  # no database: nothing to report
    time_zone = None
from todo_core.warmup import module_statements, primed_statuses, _time_zones
# Compiled again now that the first connection has initialised the dialect: the same SQL.
recompiled = {str(statement.compile(dialect=dialect)) for statement in module_statements()}
print(json.dumps({
    "classification_misses": [misses_at_import, classification_misses()],
    "endpoint_contexts": [endpoint_contexts_at_import, len(contexts)],
    "connections_at_import": connections_at_import,
    "statuses": statuses,
    "new_modules": new_modules,
    "server_version": list(dialect.server_version_info or ()),
    "backslash_escapes": dialect._backslash_escapes,
    "precompiled": len(precompiled),
    "connection_defaults_at_import": connection_defaults_at_import,
    "cache_sizes": cache_sizes,
    "frozen_at_import": frozen_at_import,
    "dispatchers_at_import": dispatchers_at_import,
    "full_collections": collections.count(2),
    "precompiled_sql_unchanged": set(precompiled.values()) <= recompiled,
    "primed_statuses": primed_statuses,
    "zone_files_read": len(zone_files_read),
    "zones_at_import": [zone.key for zone in _time_zones],
    "jwt_at_import": jwt_at_import,
    "time_zone": time_zone,
}))
"""


# Each function's two requests (the same event twice) and the statuses they get: a fresh user
# owns nothing, so reads of one id are 404s; a chat turn without a conversation id starts one; a
# keyed request's repeat is a replay of the first answer.
FIRST_REQUESTS: dict[str, tuple[str, str, dict[str, object] | None, str, list[int]]] = {
    "health": ("health", "/health", None, "check_database=true", [200, 200]),
    "list_tasks": ("list_tasks", "/api/{user}/tasks", None, "status=pending", [200, 200]),
    "create_task": ("create_task", "/api/{user}/tasks", {"title": "first"}, "", [201, 201]),
    "create_task, keyed": ("create_task", "/api/{user}/tasks", {"title": "first"}, "", [201, 201]),
    "get_task": ("get_task", "/api/{user}/tasks/1", None, "", [404, 404]),
    "update_task": ("update_task", "/api/{user}/tasks/1", {"title": "renamed"}, "", [404, 404]),
    "delete_task": ("delete_task", "/api/{user}/tasks/1", None, "", [404, 404]),
    "toggle_task": ("toggle_task", "/api/{user}/tasks/1/complete", None, "", [404, 404]),
    "chat": ("chat", "/api/{user}/chat", {"message": "add buy milk"}, "", [200, 200]),
    "chat, keyed": ("chat", "/api/{user}/chat", {"message": "add buy milk"}, "", [200, 200]),
    "list_conversations": ("list_conversations", "/api/{user}/conversations", None, "", [200, 200]),
    "list_messages": (
        "list_messages",
        "/api/{user}/conversations/1/messages",
        None,
        "",
        [404, 404],
    ),
    "delete_conversation": (
        "delete_conversation",
        "/api/{user}/conversations/1",
        None,
        "",
        [404, 404],
    ),
}


def _event(case: str, token_for: Callable[..., str]) -> dict[str, Any]:
    user_id = new_user_id()
    name, path, body, query, _ = FIRST_REQUESTS[case]
    event = event_for(
        routes()[name], path=path.format(user=user_id), user_id=None, body=body, query=query
    )
    if name != "health":
        event["headers"]["authorization"] = f"Bearer {token_for(user_id)}"
    if case.endswith(", keyed"):
        event["headers"]["idempotency-key"] = "first-requests"
    return event


def _first_requests(
    name: str, environment: dict[str, str], event: dict[str, object]
) -> dict[str, object]:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            _FIRST_REQUESTS,
            str(ROOT / "functions" / name / "app.py"),
            json.dumps(event),
        ],
        env={
            **os.environ,
            **environment,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "PYTHONPATH": str(ROOT / "shared"),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def test_every_function_is_in_the_table() -> None:
    assert {case[0] for case in FIRST_REQUESTS.values()} == set(routes())


@pytest.mark.parametrize("case", sorted(FIRST_REQUESTS))
def test_warm_up_first_request_imports_nothing_and_sends_no_startup_query(
    case: str,
    app_environment: dict[str, str],
    direct_url: str,
    database_name: str,
    token_for: Callable[..., str],
) -> None:
    proxy = CountingProxy(5432)
    try:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/{database_name}?sslmode=disable"
        result = _first_requests(
            FIRST_REQUESTS[case][0],
            {**app_environment, "DATABASE_URL": url},
            _event(case, token_for),
        )
        counts = proxy.counts()
    finally:
        proxy.close()
    assert result["connections_at_import"] == 0
    # The request path was run at init by synthetic requests that stop at the token check (the
    # health route needs none, and checks no database unless asked).
    primed = [200] * PRIME_REQUESTS if case == "health" else [401] * PRIME_REQUESTS
    assert result["primed_statuses"] == primed
    assert result["statuses"] == FIRST_REQUESTS[case][4]
    # The server's time zone (a UTC one here) was loaded at init, not from its file by the first
    # result holding a timestamp.
    assert result["time_zone"] in ("UTC", *UTC_ZONE_NAMES)
    if result["time_zone"] != "UTC":  # psycopg maps "UTC" itself, without a zone file
        assert result["time_zone"] in result["zones_at_import"]
    assert result["zone_files_read"] == 0
    # Health verifies no token: its init loads no JWT library (the synthetic token is a constant).
    assert result["jwt_at_import"] is (case != "health")
    assert result["new_modules"] == [[], []]
    # The statements were compiled at import, as the initialised dialect compiles them, and the
    # first request found its statements in the cache (no new entry).
    assert isinstance(result["precompiled"], int)
    assert result["precompiled"] > 0
    assert result["cache_sizes"] == [result["precompiled"]] * 2
    assert result["precompiled_sql_unchanged"] is True
    assert result["dispatchers_at_import"] == [True, True]
    # FastAPI's classification of every dependency's callable and its record of where the
    # endpoint is defined were made at import: the requests found them (no cache miss).
    classified_at_import, classified_after = result["classification_misses"]
    assert classified_at_import == classified_after
    assert min(classified_at_import) > 0
    contexts_at_import, contexts_after = result["endpoint_contexts"]
    assert contexts_at_import == contexts_after == 1
    assert isinstance(result["connection_defaults_at_import"], int)
    assert result["connection_defaults_at_import"] > 10  # libpq knows dozens of parameters
    # What init created is frozen: no full collection scans it during the requests.
    assert isinstance(result["frozen_at_import"], int)
    assert result["frozen_at_import"] > 10_000
    assert result["full_collections"] == 0
    # One connection; the requests send only their own statements: no version(),
    # current_schema(), isolation level or standard_conforming_strings query before them.
    assert counts.startups == 1
    assert not [sql for sql in counts.sql if "version()" in sql or sql.lower().startswith("show")]
    assert result["backslash_escapes"] is False
    with psycopg.connect(direct_url) as connection:
        number = connection.info.server_version
    assert result["server_version"] == [number // 10000, number % 10000]


def test_warm_up_never_connects_at_import_and_first_request_reports_it(
    app_environment: dict[str, str], token_for: Callable[..., str]
) -> None:
    # Nothing listens on port 1: the import succeeds, the request is a 503.
    environment = {**app_environment, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}
    result = _first_requests("get_task", environment, _event("get_task", token_for))
    assert result["connections_at_import"] == 0
    assert result["statuses"] == [503, 503]


def test_warm_up_outside_lambda_leaves_the_app_untouched() -> None:
    from todo_core.api import create_app  # noqa: PLC0415
    from todo_core.tasks.routes import router  # noqa: PLC0415

    assert "AWS_LAMBDA_FUNCTION_NAME" not in os.environ
    app = create_app(router, route="get_task")
    assert app.middleware_stack is None


def test_prime_token_is_what_it_says_signed_by_the_published_key() -> None:
    header = jwt.get_unverified_header(PRIME_TOKEN)
    claims = jwt.decode(PRIME_TOKEN, WARM_UP_SIGNING_KEY, algorithms=["HS256"])
    assert (header, claims) == (
        {"alg": "HS256", "typ": "JWT"},
        {"sub": PRIME_SUBJECT, "exp": 4_102_444_800},
    )


# The two ways tokens are verified: a shared secret, or only the frontend's JWKS (then no secret:
# an HS256 token is refused as such, before any key set is fetched; port 1 refuses the fetch).
AUTH_MODES = {
    "hs256": {},
    "jwks": {"BETTER_AUTH_SECRET": "", "BETTER_AUTH_URL": "http://localhost:1"},
}


@pytest.mark.parametrize("auth", sorted(AUTH_MODES))
@pytest.mark.parametrize("name", sorted(routes()))
def test_prime_request_path_never_reaches_the_database_logs_or_keeps_anything(
    name: str,
    auth: str,
    app_environment: dict[str, str],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The synthetic requests of the init phase, on each function's own app: refused at the token
    # check (health: answered without the database). Nothing listens on port 1, so a request that
    # reached the database would be a 503; the driver's connect is counted as well.
    module = import_function(ROOT / "functions" / name / "app.py", f"prime_{name}")
    connects: list[object] = []
    monkeypatch.setattr(psycopg, "connect", lambda *args, **kwargs: connects.append(args))
    unreachable = {
        **app_environment,
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
        **AUTH_MODES[auth],
    }
    capfd.readouterr()
    caplog.set_level(logging.DEBUG, logger="todo-api")
    verified_before = dict(deps.verified_tokens._entries)  # other tests' tokens, kept as served
    with functions_environment(unreachable):
        statuses = prime_request_path(module.app)
    expected = 200 if name == "health" else 401
    assert statuses == [expected] * PRIME_REQUESTS
    # What the init's own check expects of each route, worked out from its dependencies.
    api_routes = [r for r in module.app.router.routes if isinstance(r, fastapi.routing.APIRoute)]
    assert [expected_prime_status(route) for route in api_routes] == [expected]
    assert unexpected_prime_statuses(module.app, statuses) == []
    assert connects == []
    # No request log line, no metric, nothing on stderr: these requests were nobody's.
    assert capfd.readouterr() == ("", "")
    assert [record.getMessage() for record in caplog.records] == []
    assert deps.verified_tokens._entries == verified_before


@pytest.mark.parametrize(
    ("answered", "logged"),
    [
        ([401, 500, 401], [500]),  # a fault
        ([401, 200, 401], [200]),  # the token accepted, or the check gone
        ([401, 401], [0]),  # a request missing
        ([401, 404, 401], [404]),
    ],
)
def test_warm_up_logs_synthetic_requests_that_did_not_go_as_designed(
    answered: list[int],
    logged: list[int],
    app_environment: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Anything but what the route answers by design (get_task checks a token: 401) at init is
    # logged as a skipped step, which `make lambda-check` fails on; it never stops the init.
    from todo_core import warmup  # noqa: PLC0415
    from todo_core.api import create_app  # noqa: PLC0415
    from todo_core.tasks.routes import router  # noqa: PLC0415

    app = create_app(router, route="get_task")  # outside Lambda: no warm-up yet
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "get_task")
    monkeypatch.setattr(warmup, "prime_request_path", lambda app: answered)
    monkeypatch.setattr(warmup, "_publish_cold_start", lambda: None)
    monkeypatch.setattr(warmup.gc, "freeze", lambda: None)
    caplog.set_level(logging.WARNING, logger="todo-api")
    warmup.warm_up(app)
    assert [record.getMessage() for record in caplog.records] == [
        f"warm-up request path skipped: answered {logged}"
    ]
