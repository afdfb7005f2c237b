"""What every benchmark shares: a throwaway database, the functions' handlers, events, stats,
tables and result files."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg

from devserver.events import LambdaContext, decode_response_body, http_api_event
from devserver.mint_token import mint_token
from devserver.template import Route, import_function, read_routes

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_HOST, PG_PORT = "127.0.0.1", 5432
SECRET = secrets.token_urlsafe(48)
"""The HS256 secret of this run: the functions verify tokens minted with it."""

NO_TOOL_MESSAGE = "hmm"
"""A message the built-in assistant does not understand: a reply without tool calls."""


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny counts: a smoke run")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return parser.parse_args(argv)


def run_from_command_line(
    run: Callable[[bool, Path], object], description: str | None, argv: Sequence[str] | None = None
) -> None:
    """A benchmark's ``python -m bench.<name> [--quick] [--results-dir DIR]``."""
    args = parse_args(description or "", argv)
    run(args.quick, args.results_dir)


def pg_url(database: str, *, port: int = PG_PORT, host: str = PG_HOST) -> str:
    """A URL the functions accept. No TLS and no GSS negotiation: the counting proxy reads the
    protocol, and on loopback they only add round trips at connect."""
    return f"postgresql://postgres@{host}:{port}/{database}?sslmode=disable&gssencmode=disable"


def migrate(database_url: str) -> None:
    """Alembic upgrade head, in a child process (the benchmarks themselves never import it)."""
    environ = {**os.environ, "MIGRATION_DATABASE_URL": database_url}
    alembic = Path(sys.executable).with_name("alembic")
    subprocess.run(
        [str(alembic), "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
        check=True,
        env=environ,
        cwd=ROOT,
        capture_output=True,
    )


@contextmanager
def temporary_database(label: str) -> Iterator[str]:
    """A freshly migrated database named ``todo_bench_<label>_<random>``, dropped afterwards."""
    name = f"todo_bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate(pg_url(name))
        yield name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def app_environment(database_url: str) -> dict[str, str]:
    """What the functions read: the database and the HS256 secret, as plain variables (and no
    per-user turn limit: a benchmark sends far more turns than a person)."""
    return {
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": SECRET,
        "CHAT_TURNS_PER_WINDOW": "0",
    }


def use_database(database_url: str) -> None:
    """Point this process's functions at ``database_url`` (settings and engine start afresh)."""
    os.environ.update(app_environment(database_url))
    from todo_core.db import reset_engine  # noqa: PLC0415  # only the in-process benchmarks
    from todo_core.settings import get_settings  # noqa: PLC0415

    get_settings.cache_clear()
    reset_engine()


def close_connections() -> None:
    """Close this process's engine (its connection) before its database is dropped."""
    from todo_core.db import reset_engine  # noqa: PLC0415

    reset_engine()


def new_user_id() -> str:
    """A user id shaped like Better Auth's."""
    return secrets.token_urlsafe(24)[:32]


def token_for(user_id: str) -> str:
    return mint_token(user_id, secret=SECRET, minutes=120)


def routes() -> dict[str, Route]:
    """Every function of template.yaml by its directory name (``get_task``, ``chat``, ...)."""
    return {route.code_dir.name: route for route in read_routes(ROOT / "template.yaml")}


def function_source(name: str) -> Path:
    return ROOT / "functions" / name / "app.py"


FUNCTION_OUTPUT = open(os.devnull, "w")  # noqa: SIM115  (open for the process's life)
"""Where the functions' request log lines and EMF metrics go in a benchmark: formatted and written
as on Lambda, so that their cost is measured, but kept out of the tables."""


def load_function(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` as Lambda does, under a module name of its own; its
    log lines go to ``FUNCTION_OUTPUT`` (``invoke`` sends its metrics there too)."""
    module = import_function(function_source(name), f"fn_{name}")
    from todo_core.observability import logger  # noqa: PLC0415  (imported by the function)

    for log_handler in logger.handlers:
        if isinstance(log_handler, logging.StreamHandler):
            log_handler.setStream(FUNCTION_OUTPUT)
    return module


def event_for(
    route: Route,
    *,
    path: str,
    user_id: str | None,
    body: dict[str, Any] | None = None,
    query: str = "",
) -> dict[str, Any]:
    """A real HTTP API v2 event for ``path`` on ``route``, with a bearer token for ``user_id``."""
    found = route.pattern.fullmatch(path)
    if found is None:
        raise ValueError(f"{path} does not match {route.route_key}")
    headers = {"user-agent": "bench"}
    if user_id is not None:
        headers["authorization"] = f"Bearer {token_for(user_id)}"
    raw_body = None
    if body is not None:
        raw_body = json.dumps(body).encode()
        headers["content-type"] = "application/json"
        headers["content-length"] = str(len(raw_body))
    return http_api_event(
        method=route.method,
        raw_path=path,
        route_key=route.route_key,
        path_parameters=found.groupdict() or None,
        raw_query=query,
        headers=headers,
        body=raw_body,
    )


@dataclass
class Invoked:
    status: int
    body: Any


_CONTEXT = LambdaContext()


def invoke(module: ModuleType, event: dict[str, Any]) -> Invoked:
    """Call the function's handler as Lambda does; the event is copied (Mangum may change it).
    One context object serves every call, so that building it is not timed."""
    with contextlib.redirect_stdout(FUNCTION_OUTPUT):
        result = module.handler(dict(event), _CONTEXT)
    raw = decode_response_body(result)
    return Invoked(int(result["statusCode"]), json.loads(raw) if raw else None)


def give_main_thread_an_event_loop() -> None:
    """Mangum runs each request on ``asyncio.get_event_loop()``; Lambda's runtime provides one."""
    asyncio.set_event_loop(asyncio.new_event_loop())


def seed_conversation(connection: psycopg.Connection[Any], *, user_id: str, messages: int) -> int:
    """A conversation of ``messages`` stored messages (questions and their replies, linked as
    real turns are), created in two statements whatever its length. Returns its id."""
    row = connection.execute(
        "INSERT INTO conversation (user_id, title, created_at, updated_at)"
        " VALUES (%s, 'seeded', now(), now()) RETURNING id",
        (user_id,),
    ).fetchone()
    assert row is not None
    conversation_id = int(row[0])
    connection.execute(
        """
        WITH questions AS (
            INSERT INTO message (conversation_id, user_id, role, content, created_at)
            SELECT %(c)s, %(u)s, 'user', 'question ' || n, now()
            FROM generate_series(1, %(turns)s) AS n
            RETURNING id
        )
        INSERT INTO message
            (conversation_id, user_id, role, content, tool_calls, reply_to_id, created_at)
        SELECT %(c)s, %(u)s, 'assistant', 'answer to ' || id, '[]'::jsonb, id, now()
        FROM questions
        """,
        {"c": conversation_id, "u": user_id, "turns": messages // 2},
    )
    return conversation_id


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), nearest-rank on sorted values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99, mean and count of durations given in seconds, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, left_columns: int = 1
) -> list[str]:
    """The lines of a plain-text table: the first ``left_columns`` columns left-aligned (labels),
    the others right-aligned (figures); what the benchmarks print and BENCHMARKS.md shows."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    return [
        "  ".join(
            v.ljust(w) if i < left_columns else v.rjust(w)
            for i, (v, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in [list(headers), ["-" * w for w in widths], *cells]
    ]


def print_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], *, left_columns: int = 1
) -> None:
    print(f"\n{title}")
    print("\n".join(format_table(headers, rows, left_columns=left_columns)))
    sys.stdout.flush()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_results(results_dir: Path, name: str, data: dict[str, Any]) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    return path


def elapsed(start: float) -> float:
    return time.perf_counter() - start
