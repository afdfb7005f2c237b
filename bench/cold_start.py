"""Cold start per function: a fresh process imports the function and serves its first real event
against PostgreSQL, beside two floors measured in the same run (interleaved):

(a) ``floors/stack_app.py``: FastAPI + Mangum + SQLModel + psycopg + PyJWT doing get_task's query;
(b) ``floors/bare_handler.py``: a bare handler with psycopg and PyJWT only.

Target: every function within 1.15x of floor (a), peak RSS under 100 MB. The ratio is judged on
the median CPU time of the process (user + system), which other tenants of a shared machine
hardly move; the wall-clock ratio is printed beside it.

The cold path, in CPU ms (the figure that carries over to Lambda, where the request phase gets
the memory's share of a vCPU): each round also runs every function without bytecode outside the
standard library (a layer without .pyc on a read-only /opt) and on SnapStart's restore path (init,
before-snapshot hooks, fork, after-restore hooks, first event). Functions run as in Lambda
(``AWS_LAMBDA_FUNCTION_NAME`` set, so the init-phase warm-up runs). Targets: init with bytecode at
most 0.5x of init without; the first event after init, and after a restore, at most 1.5x a warm
event plus one connection (psycopg connect and close, measured in the same process). For
reference, get_task also runs after an init that served its event against the database
(``db-primed``, see ``cold_driver.py``): what the first event would cost if init could run the
database path, which it does not (it would have to connect).

``--runtime target`` runs every process on Lambda's interpreter version instead of this one:
CPython 3.13 (Debian 13's, ``shared/trixie-python.sh``), importing the layer as ``make build``
makes it (the same pinned wheels and CPython 3.13 bytecode, for this machine's architecture, in
``.bench/layer``; ``make bench-cold-target`` builds it and runs this). CPython 3.13 specialises
code sooner than 3.11, which changes the first requests most. Its results go to
``cold_start_target.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import (
    NO_TOOL_MESSAGE,
    ROOT,
    app_environment,
    event_for,
    function_source,
    new_user_id,
    parse_args,
    pg_url,
    print_table,
    routes,
    seed_conversation,
    temporary_database,
    write_results,
)
from bench.render import cold_path_table, cold_start_table, db_primed_line

DRIVER = ROOT / "bench" / "cold_driver.py"
TRIXIE_PYTHON = ROOT / "shared" / "trixie-python.sh"
TARGET_LAYER = ROOT / ".bench" / "layer" / "python"
FLOORS = {
    "floor (a) stack": ROOT / "bench" / "floors" / "stack_app.py",
    "floor (b) bare": ROOT / "bench" / "floors" / "bare_handler.py",
}
TARGET_RATIO = 1.15
TARGET_RSS_MB = 100.0
TARGET_BYTECODE_RATIO = 0.5
TARGET_FIRST_EVENT_FACTOR = 1.5
VARIANTS = ("normal", "no-bytecode", "restore")
# The reference variant's function: a read, so that serving its event again changes nothing.
DB_PRIMED = "get_task"
# Lambda gives a function one vCPU's worth of CPU at 1,769 MB, in proportion below that.
FULL_VCPU_MB = 1769
MEMORY_SIZES_MB = (256, 1024)


def _seed(database: str, runs: int) -> dict[str, Any]:
    user_id = new_user_id()
    with psycopg.connect(pg_url(database), autocommit=True) as connection:
        task_ids = [
            row[0]
            for row in connection.execute(
                "INSERT INTO task (user_id, title, completed, created_at, updated_at)"
                " SELECT %s, 'task ' || n, false, now(), now() FROM generate_series(1, %s) AS n"
                " RETURNING id",
                (user_id, len(VARIANTS) * (runs + 1) + 11),
            )
        ]
        conversations = [
            seed_conversation(connection, user_id=user_id, messages=20)
            for _ in range(len(VARIANTS) * (runs + 1) + 2)
        ]
        connection.execute("ANALYZE")
    return {"user_id": user_id, "task_ids": task_ids, "conversations": conversations}


def _events(seed: dict[str, Any], run: int) -> dict[str, dict[str, Any]]:
    """The first event each function serves in run ``run`` (deletes get their own rows)."""
    by_name = routes()
    user_id = seed["user_id"]
    task = seed["task_ids"][0]
    conversation = seed["conversations"][0]
    api = f"/api/{user_id}"

    def event(name: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return event_for(by_name[name], path=path, user_id=user_id, **kwargs)

    events = {
        "health": event_for(
            by_name["health"], path="/health", user_id=None, query="check_database=true"
        ),
        "list_tasks": event("list_tasks", f"{api}/tasks"),
        "create_task": event("create_task", f"{api}/tasks", body={"title": "cold start"}),
        "get_task": event("get_task", f"{api}/tasks/{task}"),
        "update_task": event("update_task", f"{api}/tasks/{task}", body={"title": "renamed"}),
        "delete_task": event("delete_task", f"{api}/tasks/{seed['task_ids'][run + 1]}"),
        "toggle_task": event("toggle_task", f"{api}/tasks/{task}/complete"),
        "chat": event(
            "chat",
            f"{api}/chat",
            body={"message": NO_TOOL_MESSAGE, "conversation_id": conversation},
        ),
        "list_conversations": event("list_conversations", f"{api}/conversations"),
        "list_messages": event("list_messages", f"{api}/conversations/{conversation}/messages"),
        "delete_conversation": event(
            "delete_conversation", f"{api}/conversations/{seed['conversations'][run + 1]}"
        ),
    }
    for floor in FLOORS:
        events[floor] = events["get_task"]
    return events


def _interpreter(runtime: str) -> list[str]:
    """The command that runs the driver: this interpreter, or the target's CPython 3.13."""
    if runtime == "target":
        return ["bash", str(TRIXIE_PYTHON), "run"]
    return [sys.executable]


def _cold_start(
    source: Path,
    event: dict[str, Any],
    environ: dict[str, str],
    mode: str = "normal",
    runtime: str = "this",
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as stream:
        json.dump(event, stream)
    try:
        started = time.perf_counter()
        completed = subprocess.run(
            [*_interpreter(runtime), str(DRIVER), str(source), stream.name, mode],
            env=environ,
            capture_output=True,
            text=True,
            check=False,
        )
        wall_ms = (time.perf_counter() - started) * 1000
    finally:
        os.unlink(stream.name)
    if completed.returncode != 0:
        raise RuntimeError(f"{source} failed:\n{completed.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    result["process_wall_ms"] = wall_ms
    return result


def run(
    quick: bool, results_dir: Path, runs: int | None = None, runtime: str = "this"
) -> dict[str, Any]:
    runs = runs or (1 if quick else 11)
    if runtime == "target" and not (TARGET_LAYER / "todo_core").is_dir():
        raise SystemExit(f"no layer in {TARGET_LAYER}: make bench-cold-target builds it")
    names = [*FLOORS, *sorted(routes())]
    sources = {name: FLOORS.get(name) or function_source(name) for name in names}
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    cold: dict[str, dict[str, list[dict[str, Any]]]] = {
        variant: {name: [] for name in names} for variant in VARIANTS[1:]
    }
    primed: list[dict[str, Any]] = []
    with temporary_database("cold") as database:
        environ = {
            **os.environ,
            **app_environment(pg_url(database)),
            "AWS_LAMBDA_FUNCTION_NAME": "cold-start",
        }
        if runtime == "target":  # the layer, and nothing of this machine's environment
            environ["PYTHONPATH"] = str(TARGET_LAYER)
        seed = _seed(database, runs + 1)
        # Run 0 warms the file cache and writes bytecode; it is not counted. Then the variants
        # take turns (ABAB...), each round in a rotated order, so drift hits all of them alike.
        for round_ in range(runs + 1):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for index, variant in enumerate(VARIANTS):
                events = _events(seed, round_ * len(VARIANTS) + index)
                for name in order:
                    result = _cold_start(sources[name], events[name], environ, variant, runtime)
                    if result["status"] >= 400:
                        raise RuntimeError(f"{name} ({variant}): status {result['status']}")
                    if round_ and variant == "normal":
                        samples[name].append(result)
                    elif round_:
                        cold[variant][name].append(result)
            result = _cold_start(
                sources[DB_PRIMED], events[DB_PRIMED], environ, "db-primed", runtime
            )
            if round_:
                primed.append(result)
    table = _summarize(samples)
    _print(table, runs)
    cold_path = _summarize_cold_path(samples, cold)
    _print_cold_path(cold_path, runs)
    print(db_primed_line({"db_primed": _summarize_db_primed(primed)}))
    data = {"runs": runs, "target_ratio": TARGET_RATIO, "target_rss_mb": TARGET_RSS_MB}
    cold_data = {
        "target_bytecode_ratio": TARGET_BYTECODE_RATIO,
        "target_first_event_factor": TARGET_FIRST_EVENT_FACTOR,
        "memory_sizes_mb": list(MEMORY_SIZES_MB),
        "full_vcpu_mb": FULL_VCPU_MB,
        "cold_path": cold_path,
        "db_primed": _summarize_db_primed(primed),
    }
    python = samples[names[0]][0]["python"]
    data["python"] = python
    name = "cold_start" if runtime == "this" else "cold_start_target"
    write_results(results_dir, name, {**data, "rows": table, **cold_data})
    return {**data, "rows": table, **cold_data}


def _first_event_figures(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A variant's first event after init beside its warm event, one connection and the budget
    they make (medians, CPU ms)."""
    warm = _median(runs, "warm_event_cpu_ms")
    connection = _median(runs, "connection_cpu_ms")
    less_connection = statistics.median(
        run["first_event_cpu_ms"] - run["first_event_connect_cpu_ms"] for run in runs
    )
    return {
        "first_event_cpu_ms": _median(runs, "first_event_cpu_ms"),
        "first_event_connect_cpu_ms": _median(runs, "first_event_connect_cpu_ms"),
        "first_event_less_connect_cpu_ms": round(less_connection, 2),
        "warm_event_cpu_ms": warm,
        "connection_cpu_ms": connection,
        "first_event_budget_cpu_ms": round(TARGET_FIRST_EVENT_FACTOR * warm + connection, 2),
    }


def _summarize_cold_path(
    normal: dict[str, list[dict[str, Any]]], cold: dict[str, dict[str, list[dict[str, Any]]]]
) -> list[dict[str, Any]]:
    """Per function, in CPU ms: init with and without bytecode (and their per-round ratio), the
    first event after init, a warm event, one connection, the first event after a restore, the
    targets, and the first event's duration at each memory size's share of a vCPU."""
    rows = []
    for name, runs in normal.items():
        without = cold["no-bytecode"][name]
        restored = cold["restore"][name]
        init = _median(runs, "init_cpu_ms")
        ratios = [a["init_cpu_ms"] / b["init_cpu_ms"] for a, b in zip(runs, without, strict=True)]
        figures = _first_event_figures(runs)
        first = figures["first_event_cpu_ms"]
        budget = figures["first_event_budget_cpu_ms"]
        restore_first = _median(restored, "first_event_cpu_ms")
        bytecode_ratio = round(statistics.median(ratios), 3)
        rows.append(
            {
                "name": name,
                "init_cpu_ms": init,
                "init_cpu_ms_no_bytecode": _median(without, "init_cpu_ms"),
                "init_bytecode_ratio": bytecode_ratio,
                **figures,
                "restore_first_event_cpu_ms": restore_first,
                "restore_first_event_page_faults": _median(restored, "first_event_page_faults"),
                "first_event_ms_at_memory": {
                    str(mb): round(first * FULL_VCPU_MB / mb, 1) for mb in MEMORY_SIZES_MB
                },
                "meets_cold_path_targets": name in FLOORS
                or (
                    bytecode_ratio <= TARGET_BYTECODE_RATIO
                    and first <= budget
                    and restore_first <= budget
                ),
            }
        )
    return rows


def _summarize_db_primed(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The reference variant's figures, as a cold path row's, with its budget."""
    figures = _first_event_figures(runs)
    return {
        "name": DB_PRIMED,
        "primed_events": runs[0]["primed_events"],
        **figures,
        "first_event_vs_budget": round(
            figures["first_event_cpu_ms"] / figures["first_event_budget_cpu_ms"], 2
        ),
    }


def _print_cold_path(rows: list[dict[str, Any]], runs: int) -> None:
    print_table(
        f"1b. Cold path in CPU ms (median of {runs} fresh processes per variant)",
        *cold_path_table({"cold_path": rows, "memory_sizes_mb": list(MEMORY_SIZES_MB)}),
    )
    print(
        f"targets: init <= {TARGET_BYTECODE_RATIO}x init without bytecode (median of per-round"
        f" ratios); first event and restore first event <= budget = {TARGET_FIRST_EVENT_FACTOR}x"
        " warm event + one connection. 'its connection': the first event's CPU in opening the"
        " database connection (the pool's, with the engine's first-connect work), '1st less it'"
        " the rest (median of per-round differences); 'connection': one more psycopg connect"
        f" and close later in the same process. '1st @N MB': the first event's CPU at N MB's"
        f" share of a vCPU (N/{FULL_VCPU_MB})"
    )


def _median(samples: Sequence[dict[str, Any]], key: str) -> float:
    return round(statistics.median(s[key] for s in samples), 2)


def _paired_ratios(runs: Sequence[dict[str, Any]], floor: Sequence[dict[str, Any]]) -> list[float]:
    """CPU time over floor (a)'s in the same round, round by round: drift in the machine's load
    between rounds cancels out."""
    return [run["cpu_ms"] / base["cpu_ms"] for run, base in zip(runs, floor, strict=True)]


def _summarize(samples: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    floor_a = _median(samples["floor (a) stack"], "total_ms")
    floor_b = _median(samples["floor (b) bare"], "total_ms")
    rows = []
    for name, runs in samples.items():
        total = _median(runs, "total_ms")
        cpu = _median(runs, "cpu_ms")
        peak = max(s["peak_rss_mb"] for s in runs)
        ratios = _paired_ratios(runs, samples["floor (a) stack"])
        ratio = statistics.median(ratios)
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratio] * 3
        rows.append(
            {
                "name": name,
                "total_ms": total,
                "cpu_ms": cpu,
                "cpu_vs_floor_a": round(ratio, 3),
                "cpu_vs_floor_a_iqr": [round(quartiles[0], 3), round(quartiles[2], 3)],
                "cpu_ms_samples": [round(s["cpu_ms"], 1) for s in runs],
                "import_ms": _median(runs, "import_ms"),
                "first_event_ms": _median(runs, "first_event_ms"),
                "process_wall_ms": _median(runs, "process_wall_ms"),
                "vs_floor_a": round(total / floor_a, 3),
                "vs_floor_b": round(total / floor_b, 3),
                "peak_rss_mb": round(peak, 1),
                "modules": max(s["modules"] for s in runs),
                "meets_targets": name in FLOORS or (ratio <= TARGET_RATIO and peak < TARGET_RSS_MB),
            }
        )
    return rows


def _print(rows: list[dict[str, Any]], runs: int) -> None:
    print_table(
        f"1. Cold start (median of {runs} fresh processes; import + first event on PostgreSQL)",
        *cold_start_table({"rows": rows}),
    )
    print(
        f"target: CPU <= {TARGET_RATIO}x floor (a)'s and peak RSS < {TARGET_RSS_MB:.0f} MB."
        " 'x a (CPU)' is the median of per-round ratios to floor (a), with their interquartile"
        " range; 'process ms' adds interpreter start and exit, as measured by the parent;"
        " 'modules' is how many the process has loaded after its first event (no noise)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    runtimes = argparse.ArgumentParser(add_help=False)
    runtimes.add_argument("--runtime", choices=("this", "target"), default="this")
    known, rest = runtimes.parse_known_args(argv)
    args = parse_args(__doc__ or "", rest)
    run(args.quick, args.results_dir, runtime=known.runtime)


if __name__ == "__main__":
    main()
