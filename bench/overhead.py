"""Overhead of the stack per warm request, for every task route, health and a chat turn.

Each function's handler (event -> Mangum -> FastAPI -> auth -> session -> SQL -> response JSON,
with the request log line and metrics) runs in this process next to bare psycopg on a warm
autocommit connection sending the very SQL the handler sends (captured from the engine, replayed
with the same parameters), interleaved round by round. For the list of 100 tasks the bare path
also turns the rows into JSON (``json.dumps``), as any API must. Per request: wall time and CPU
time (``time.process_time``, every thread of the process: on Lambda, CPU is what a function
gets a share of a vCPU for). The health route and the chat turn (no tool call) have no bare
counterpart; their CPU is reported.

A last experiment runs the get_task handler with FastAPI's thread-pool hops replaced by direct
calls: its difference to the handler is what the hops cost (nothing, once no route or dependency
is sync). A pyinstrument profile (self time by package) shows where the rest goes. Then the same
routes through HTTP: the local server in a child process, a keep-alive client, interleaved.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
from sqlalchemy import event as sa_event

from bench.harness import (
    FUNCTION_OUTPUT,
    NO_TOOL_MESSAGE,
    ROOT,
    app_environment,
    close_connections,
    event_for,
    give_main_thread_an_event_loop,
    load_function,
    new_user_id,
    pg_url,
    print_table,
    routes,
    run_from_command_line,
    seed_conversation,
    summary_ms,
    temporary_database,
    token_for,
    use_database,
    write_results,
)
from bench.render import overhead_table
from devserver.events import LambdaContext

PACKAGES = (
    "todo_core",
    "mangum",
    "fastapi",
    "starlette",
    "anyio",
    "pydantic",
    "sqlmodel",
    "sqlalchemy",
    "psycopg",
    "jwt",
    "cryptography",
    "aws_lambda_powertools",
    "asyncio",
    "json",
    "logging",
)
LIST_SIZE = 100
GET_TARGET = 3.0
LIST_TARGET = 2.0


@contextlib.contextmanager
def sync_calls_inline() -> Iterator[None]:
    """For the experiment only: FastAPI calls sync dependencies and endpoints directly instead of
    in its thread pool (``run_in_threadpool``, ``contextmanager_in_threadpool``)."""
    import fastapi.dependencies.utils as dependencies  # noqa: PLC0415
    from fastapi import routing  # noqa: PLC0415

    async def run_inline(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    @contextlib.asynccontextmanager
    async def enter_inline(manager: Any) -> AsyncIterator[Any]:
        with manager as value:
            yield value

    saved = (routing.run_in_threadpool, dependencies.run_in_threadpool)
    saved_manager = dependencies.contextmanager_in_threadpool
    routing.run_in_threadpool = dependencies.run_in_threadpool = run_inline  # type: ignore[assignment]
    dependencies.contextmanager_in_threadpool = enter_inline  # type: ignore[assignment]
    try:
        yield
    finally:
        routing.run_in_threadpool, dependencies.run_in_threadpool = saved
        dependencies.contextmanager_in_threadpool = saved_manager


def _package(file_path: str) -> str:
    parts = Path(file_path).parts
    for package in PACKAGES:
        if package in parts or f"{package}.py" in parts:
            return package
    return "other"


def profile(
    request: Callable[[], Any], iterations: int
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Self time per request (ms) of ``request`` summed by package and by function."""
    from pyinstrument import Profiler  # noqa: PLC0415  # only this benchmark profiles

    profiler = Profiler(interval=0.0002)
    profiler.start()
    for _ in range(iterations):
        request()
    session = profiler.stop()
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    stack = [session.root_frame()]
    while stack:
        frame = stack.pop()
        if frame is None:
            continue
        stack.extend(frame.children)
        self_time = frame.total_self_time
        if not self_time or frame.file_path is None:
            continue
        package = _package(frame.file_path)
        by_package[package] += self_time
        by_function[f"{package}: {frame.function} ({Path(frame.file_path).name})"] += self_time

    def per_request(counter: Counter[str], top: int) -> list[tuple[str, float]]:
        return [(k, round(v * 1000 / iterations, 3)) for k, v in counter.most_common(top)]

    return per_request(by_package, len(PACKAGES) + 1), per_request(by_function, 15)


@dataclass
class Measured:
    """One thing measured: a request run once per round, its wall and CPU time per run."""

    name: str
    run: Callable[[], None]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def measure(self) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        self.run()
        self.wall.append(time.perf_counter() - wall)
        self.cpu.append(time.process_time() - cpu)

    def summary(self) -> dict[str, float]:
        cpu_ms = [s * 1000 for s in self.cpu]
        return {
            **summary_ms(self.wall),
            "cpu_ms": round(statistics.median(cpu_ms), 3),
            "cpu_mean_ms": round(statistics.fmean(cpu_ms), 3),
        }


_CONTEXT = LambdaContext()


def call_handler(module: ModuleType, event: dict[str, Any], status: int) -> None:
    """Lambda's call, and nothing a client would do after it (the body is not decoded)."""
    with contextlib.redirect_stdout(FUNCTION_OUTPUT):
        result = module.handler(dict(event), _CONTEXT)
    if result["statusCode"] != status:
        raise RuntimeError(f"{event['routeKey']} answered {result['statusCode']}: {result}")


def captured_sql(run: Callable[[], None]) -> list[tuple[str, Any]]:
    """The statements (and parameters) the functions' engine sends while ``run`` runs."""
    from todo_core.db import get_engine  # noqa: PLC0415  (after use_database)

    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        sent.append((statement, parameters))

    engine = get_engine()
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    return sent


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


@dataclass
class Setup:
    database: str
    reader: str
    writer: str
    get_id: int
    chat_conversation: int
    chatter: str
    writer_task: int
    delete_ids: list[int]
    bare_delete_ids: list[int]
    http_delete_ids: list[int]


def _seed(database: str, deletes: int, http_deletes: int) -> Setup:
    reader, writer, chatter = new_user_id(), new_user_id(), new_user_id()
    with psycopg.connect(pg_url(database), autocommit=True) as connection:
        insert = (
            "INSERT INTO task (user_id, title, description, completed, created_at, updated_at)"
            " SELECT %s, 'task ' || n, 'a description', n %% 3 = 0, now(), now()"
            " FROM generate_series(1, %s) AS n RETURNING id"
        )
        get_id = max(int(r[0]) for r in connection.execute(insert, (reader, LIST_SIZE)))
        writer_ids = [
            int(r[0]) for r in connection.execute(insert, (writer, 1 + 2 * deletes + http_deletes))
        ]
        conversation = seed_conversation(connection, user_id=chatter, messages=10)
        connection.execute("ANALYZE")
    return Setup(
        database=database,
        reader=reader,
        writer=writer,
        get_id=get_id,
        chat_conversation=conversation,
        chatter=chatter,
        writer_task=writer_ids[0],
        delete_ids=writer_ids[1 : 1 + deletes],
        bare_delete_ids=writer_ids[1 + deletes : 1 + 2 * deletes],
        http_delete_ids=writer_ids[1 + 2 * deletes :],
    )


def _events(setup: Setup) -> dict[str, dict[str, Any]]:
    table = routes()
    reader, writer = setup.reader, setup.writer
    some_task = setup.writer_task
    return {
        "get_task": event_for(
            table["get_task"], path=f"/api/{reader}/tasks/{setup.get_id}", user_id=reader
        ),
        "list_tasks": event_for(table["list_tasks"], path=f"/api/{reader}/tasks", user_id=reader),
        "create_task": event_for(
            table["create_task"],
            path=f"/api/{writer}/tasks",
            user_id=writer,
            body={"title": "a new task", "description": "created by the benchmark"},
        ),
        "update_task": event_for(
            table["update_task"],
            path=f"/api/{writer}/tasks/{some_task}",
            user_id=writer,
            body={"title": "renamed", "completed": True},
        ),
        "toggle_task": event_for(
            table["toggle_task"], path=f"/api/{writer}/tasks/{some_task}/complete", user_id=writer
        ),
        "health": event_for(table["health"], path="/health", user_id=None),
        "chat": event_for(
            table["chat"],
            path=f"/api/{setup.chatter}/chat",
            user_id=setup.chatter,
            body={"message": NO_TOOL_MESSAGE, "conversation_id": setup.chat_conversation},
        ),
    }


STATUS = {"create_task": 201, "delete_task": 204}


def _bare_paths(
    bare: psycopg.Connection[Any],
    functions: dict[str, ModuleType],
    events: dict[str, dict[str, Any]],
    setup: Setup,
) -> dict[str, Callable[[], None]]:
    """For each task route, bare psycopg sending the statements its handler sends."""
    sent = {
        name: captured_sql(
            lambda name=name: call_handler(functions[name], events[name], STATUS.get(name, 200))
        )
        for name in ("get_task", "list_tasks", "create_task", "update_task", "toggle_task")
    }
    delete_event = _delete_event(setup, setup.delete_ids.pop())
    [(delete_sql, delete_parameters)] = captured_sql(
        lambda: call_handler(functions["delete_task"], delete_event, 204)
    )
    bare_ids = iter(setup.bare_delete_ids)
    deleted_id = delete_event["pathParameters"]["task_id"]

    def replay(name: str) -> Callable[[], None]:
        [(statement, parameters)] = sent[name]

        def run() -> None:
            if not bare.execute(statement, parameters).fetchall():
                raise RuntimeError(f"bare {name}: no row")

        return run

    def list_with_json() -> None:
        [(statement, parameters)] = sent["list_tasks"]
        cursor = bare.execute(statement, parameters)
        names = [column.name for column in cursor.description or ()]
        rows = cursor.fetchall()
        if len(rows) != LIST_SIZE:
            raise RuntimeError(f"bare list: {len(rows)} rows")
        json.dumps([dict(zip(names, row, strict=True)) for row in rows], default=_json_default)

    def delete_next() -> None:
        task_id = next(bare_ids)
        parameters = _with_id(delete_parameters, int(deleted_id), task_id)
        if not bare.execute(delete_sql, parameters).fetchall():
            raise RuntimeError("bare delete: no row")

    paths = {name: replay(name) for name in ("get_task", "create_task", "update_task")}
    return {
        **paths,
        "toggle_task": replay("toggle_task"),
        "list_tasks": list_with_json,
        "delete_task": delete_next,
    }


def _with_id(parameters: Any, old: int, new: int) -> Any:
    if isinstance(parameters, dict):
        return {k: new if v == old and isinstance(v, int) else v for k, v in parameters.items()}
    return type(parameters)(new if v == old and isinstance(v, int) else v for v in parameters)


def _delete_event(setup: Setup, task_id: int) -> dict[str, Any]:
    return event_for(
        routes()["delete_task"], path=f"/api/{setup.writer}/tasks/{task_id}", user_id=setup.writer
    )


ROWS = (
    ("get_task", "get_task"),
    ("list 100 tasks", "list_tasks"),
    ("create_task", "create_task"),
    ("update_task", "update_task"),
    ("toggle_task", "toggle_task"),
    ("delete_task", "delete_task"),
    ("health", "health"),
    ("chat turn, no tool call", "chat"),
)


def measure_in_process(setup: Setup, iterations: int, warmup: int) -> dict[str, Any]:
    names = [name for _, name in ROWS]
    functions = {name: load_function(name) for name in names}
    events = _events(setup)
    for name in names:  # every function's first (cold) request, not measured
        if name != "delete_task":
            call_handler(functions[name], events[name], STATUS.get(name, 200))
    bare = psycopg.connect(pg_url(setup.database), autocommit=True, prepare_threshold=None)
    bare_runs = _bare_paths(bare, functions, events, setup)
    delete_events = iter([_delete_event(setup, task_id) for task_id in setup.delete_ids])

    def handler_run(name: str) -> Callable[[], None]:
        if name == "delete_task":
            return lambda: call_handler(functions[name], next(delete_events), 204)
        return lambda: call_handler(functions[name], events[name], STATUS.get(name, 200))

    def inlined() -> None:
        with sync_calls_inline():
            call_handler(functions["get_task"], events["get_task"], 200)

    handlers = {name: Measured(name, handler_run(name)) for name in names}
    bares = {name: Measured(f"bare {name}", run) for name, run in bare_runs.items()}
    experiment = Measured("get_task, no thread hops (exp.)", inlined)
    every_path = [*handlers.values(), *bares.values(), experiment]
    for round_number in range(warmup + iterations):
        # A rotating order, so that no path always runs right after the same other one.
        shift = round_number % len(every_path)
        for path in every_path[shift:] + every_path[:shift]:
            if round_number < warmup:
                path.run()
            else:
                path.measure()
    by_package, by_function = profile(
        lambda: call_handler(functions["get_task"], events["get_task"], 200),
        max(iterations // 4, 10),
    )
    list_by_package, _ = profile(
        lambda: call_handler(functions["list_tasks"], events["list_tasks"], 200),
        max(iterations // 8, 5),
    )
    chat_by_package, _ = profile(
        lambda: call_handler(functions["chat"], events["chat"], 200), max(iterations // 8, 5)
    )
    bare.close()
    close_connections()
    return {
        "handlers": {name: path.summary() for name, path in handlers.items()},
        "bare": {name: path.summary() for name, path in bares.items()},
        "experiment": experiment.summary(),
        "profiles": (by_package, by_function, list_by_package, chat_by_package),
    }


def measure_through_http(setup: Setup, requests: int, warmup: int) -> dict[str, dict[str, float]]:
    """p50 of each route through the local server (a child process) and a keep-alive client."""
    environment = {
        **os.environ,
        **app_environment(pg_url(setup.database)),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT / "infra")]),
    }
    with tempfile.TemporaryDirectory() as directory:
        # Its log lines go to a file: a pipe nobody reads would fill up and stall it.
        log = Path(directory) / "devserver.log"
        with log.open("w") as output:
            server = subprocess.Popen(
                [sys.executable, "-u", "-m", "devserver", "--port", "0", "--no-migrate"],
                cwd=ROOT,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                return _http_rounds(setup, _wait_for_port(server, log), requests, warmup)
            finally:
                server.terminate()
                server.wait(timeout=10)


def _wait_for_port(server: subprocess.Popen[str], log: Path, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("Todo API on http://"):
                return int(line.split()[3].rsplit(":", 1)[1])
        if server.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"the local server did not start:\n{log.read_text()[-2000:]}")


def _http_rounds(
    setup: Setup, port: int, requests: int, warmup: int
) -> dict[str, dict[str, float]]:
    reader, writer = setup.reader, setup.writer
    some_task = setup.writer_task
    headers = {"reader": token_for(reader), "writer": token_for(writer)}
    chat_token = token_for(setup.chatter)
    delete_ids = iter(setup.http_delete_ids)
    chat_body = {"message": NO_TOOL_MESSAGE, "conversation_id": setup.chat_conversation}
    plan: dict[str, Callable[[], tuple[str, str, str, object, int]]] = {
        "get_task": lambda: (
            "GET",
            f"/api/{reader}/tasks/{setup.get_id}",
            headers["reader"],
            None,
            200,
        ),
        "list_tasks": lambda: ("GET", f"/api/{reader}/tasks", headers["reader"], None, 200),
        "create_task": lambda: (
            "POST",
            f"/api/{writer}/tasks",
            headers["writer"],
            {"title": "over http"},
            201,
        ),
        "update_task": lambda: (
            "PUT",
            f"/api/{writer}/tasks/{some_task}",
            headers["writer"],
            {"title": "renamed over http"},
            200,
        ),
        "toggle_task": lambda: (
            "PATCH",
            f"/api/{writer}/tasks/{some_task}/complete",
            headers["writer"],
            None,
            200,
        ),
        "delete_task": lambda: (
            "DELETE",
            f"/api/{writer}/tasks/{next(delete_ids)}",
            headers["writer"],
            None,
            204,
        ),
        "health": lambda: ("GET", "/health", "", None, 200),
        "chat": lambda: ("POST", f"/api/{setup.chatter}/chat", chat_token, chat_body, 200),
    }
    times: dict[str, list[float]] = {name: [] for name in plan}
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for round_number in range(warmup + requests):
            for name, make in plan.items():
                method, path, token, body, status = make()
                request_headers = {"Authorization": f"Bearer {token}"} if token else {}
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    request_headers["Content-Type"] = "application/json"
                started = time.perf_counter()
                client.request(method, path, body=data, headers=request_headers)
                response = client.getresponse()
                response.read()
                elapsed = time.perf_counter() - started
                if response.status != status:
                    raise RuntimeError(f"{method} {path} over HTTP: {response.status}")
                if round_number >= warmup:
                    times[name].append(elapsed)
    finally:
        client.close()
    return {name: summary_ms(values) for name, values in times.items()}


def _ratio(value: float, floor: float) -> float:
    return round(value / floor, 2) if floor else float("nan")


def run(quick: bool, results_dir: Path) -> dict[str, Any]:
    iterations, warmup = (20, 5) if quick else (1000, 50)
    http_requests, http_warmup = (5, 2) if quick else (200, 20)
    give_main_thread_an_event_loop()
    with temporary_database("overhead") as database:
        setup = _seed(database, iterations + warmup + 1, http_requests + http_warmup)
        use_database(pg_url(database))
        measured = measure_in_process(setup, iterations, warmup)
        over_http = measure_through_http(setup, http_requests, http_warmup)
    handlers, bare = measured["handlers"], measured["bare"]
    rows: list[dict[str, Any]] = []
    for label, name in ROWS:
        floor = bare.get(name)
        rows.append(
            {
                "route": label,
                "function": name,
                "handler": handlers[name],
                "bare_psycopg": floor,
                "ratio_p50": _ratio(handlers[name]["p50_ms"], floor["p50_ms"]) if floor else None,
                "cpu_ratio": _ratio(handlers[name]["cpu_ms"], floor["cpu_ms"]) if floor else None,
                "http": over_http[name],
            }
        )
    get, listed = rows[0], rows[1]
    experiment = measured["experiment"]
    hops = round(get["handler"]["p50_ms"] - experiment["p50_ms"], 3)
    by_package, by_function, list_by_package, chat_by_package = measured["profiles"]
    data = {
        "iterations": iterations,
        "handler": get["handler"],
        "bare_psycopg": get["bare_psycopg"],
        "handler_without_thread_hops": experiment,
        "thread_hops_p50_ms": hops,
        "ratio_p50": get["ratio_p50"],
        "difference_p50_ms": round(get["handler"]["p50_ms"] - get["bare_psycopg"]["p50_ms"], 3),
        "profile_by_package_ms": by_package,
        "profile_by_function_ms": by_function,
        "routes": rows,
        "targets": {
            "get_task_ratio_p50": {"value": get["ratio_p50"], "target": GET_TARGET},
            "list_ratio_p50": {"value": listed["ratio_p50"], "target": LIST_TARGET},
        },
        "http_requests": http_requests,
        "profile_list_by_package_ms": list_by_package,
        "profile_chat_by_package_ms": chat_by_package,
    }
    print_table(
        f"4. Stack overhead per warm request ({iterations} of each, interleaved in one run)",
        *overhead_table(data),
    )
    print(
        f"   targets: get_task {get['ratio_p50']}x bare (<= {GET_TARGET}),"
        f" list of {LIST_SIZE} {listed['ratio_p50']}x bare + json (<= {LIST_TARGET});"
        f" get_task without thread hops (exp.) p50 {experiment['p50_ms']} ms"
        f" (hops: {hops} ms)"
    )
    print_table(
        "   Profile (pyinstrument, self time per request by package, ms; inflated by the"
        " profiler: the shares count)",
        ["package", "get_task", "list 100", "chat turn"],
        _side_by_side(by_package, list_by_package, chat_by_package),
    )
    print_table("   get_task's costliest functions (ms)", ["function", "ms"], by_function[:10])
    write_results(results_dir, "overhead", data)
    return data


def _side_by_side(*profiles: list[tuple[str, float]]) -> list[list[Any]]:
    tables = [dict(p) for p in profiles]
    packages = sorted(
        {name for table in tables for name in table},
        key=lambda n: -sum(t.get(n, 0) for t in tables),
    )
    return [[name, *(table.get(name, 0.0) for table in tables)] for name in packages]


if __name__ == "__main__":
    run_from_command_line(run, __doc__)
