"""Overhead of the stack per warm request: one task read through the get_task handler (event ->
Mangum -> FastAPI -> auth -> session -> SQL -> response model -> JSON) vs the same SELECT through
bare psycopg on a warm connection, interleaved in one run. A third path, an experiment, runs the
handler with FastAPI's thread-pool hops replaced by direct calls (sync dependencies and the
endpoint run on the event loop's thread): its difference to the handler is what the hops cost.
A pyinstrument profile of that path (pyinstrument sees one thread), summed by package, shows
where the rest goes.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import (
    close_connections,
    event_for,
    give_main_thread_an_event_loop,
    invoke,
    load_function,
    new_user_id,
    parse_args,
    pg_url,
    print_table,
    routes,
    summary_ms,
    temporary_database,
    use_database,
    write_results,
)

SAME_SQL = (
    "SELECT task.title, task.description, task.id, task.user_id, task.completed,"
    " task.created_at, task.updated_at FROM task WHERE task.id = %s AND task.user_id = %s"
)
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
    "asyncio",
    "json",
)


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
    request: Any, iterations: int
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


def run(quick: bool, results_dir: Path) -> dict[str, Any]:
    iterations = 30 if quick else 2000
    give_main_thread_an_event_loop()
    get_task = load_function("get_task")
    with temporary_database("overhead") as database:
        user_id = new_user_id()
        with psycopg.connect(pg_url(database), autocommit=True) as connection:
            row = connection.execute(
                "INSERT INTO task (user_id, title, description, completed, created_at, updated_at)"
                " VALUES (%s, 'read me', 'a description', false, now(), now()) RETURNING id",
                (user_id,),
            ).fetchone()
        assert row is not None
        task_id = int(row[0])
        use_database(pg_url(database))
        event = event_for(
            routes()["get_task"], path=f"/api/{user_id}/tasks/{task_id}", user_id=user_id
        )
        bare = psycopg.connect(pg_url(database), autocommit=True, prepare_threshold=None)

        def through_handler() -> None:
            response = invoke(get_task, event)
            if response.status != 200:
                raise RuntimeError(f"get_task failed: {response.status}")

        def through_psycopg() -> None:
            if bare.execute(SAME_SQL, (task_id, user_id)).fetchone() is None:
                raise RuntimeError("task not found")

        def inlined() -> None:
            with sync_calls_inline():
                through_handler()

        paths = ((through_handler, []), (through_psycopg, []), (inlined, []))
        for _ in range(50):  # warm every path
            for request, _times in paths:
                request()
        for _ in range(iterations):
            for request, times in paths:
                started = time.perf_counter()
                request()
                times.append(time.perf_counter() - started)
        handler_times, bare_times, inline_times = (times for _, times in paths)
        with sync_calls_inline():
            by_package, by_function = profile(through_handler, max(iterations // 4, 10))
        bare.close()
        close_connections()
    handler, plain = summary_ms(handler_times), summary_ms(bare_times)
    inline = summary_ms(inline_times)
    hops = round(handler["p50_ms"] - inline["p50_ms"], 3)
    ratio = round(handler["p50_ms"] / plain["p50_ms"], 2)
    difference = round(handler["p50_ms"] - plain["p50_ms"], 3)
    print_table(
        f"4. Stack overhead per warm request ({iterations} task reads each, interleaved)",
        ["path", "p50 ms", "p99 ms", "mean ms"],
        [
            ["get_task handler", handler["p50_ms"], handler["p99_ms"], handler["mean_ms"]],
            ["bare psycopg, same SQL", plain["p50_ms"], plain["p99_ms"], plain["mean_ms"]],
            [
                "handler, no thread hops (exp.)",
                inline["p50_ms"],
                inline["p99_ms"],
                inline["mean_ms"],
            ],
            ["ratio (p50)", ratio, "", ""],
            ["difference (p50, ms)", difference, "", ""],
            ["of which thread hops (ms)", hops, "", ""],
        ],
    )
    print_table(
        "   Profile of the handler without thread hops: self time per request by package (ms)",
        ["package", "ms"],
        by_package,
    )
    print_table("   ... and the costliest functions (ms)", ["function", "ms"], by_function[:10])
    data = {
        "iterations": iterations,
        "handler": handler,
        "bare_psycopg": plain,
        "handler_without_thread_hops": inline,
        "thread_hops_p50_ms": hops,
        "ratio_p50": ratio,
        "difference_p50_ms": difference,
        "profile_by_package_ms": by_package,
        "profile_by_function_ms": by_function,
    }
    write_results(results_dir, "overhead", data)
    return data


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv)
    run(args.quick, args.results_dir)


if __name__ == "__main__":
    main()
