"""A chat turn answered by a model (CHAT_ASSISTANT=openai) against the built-in assistant: the
turn's own overhead with the fake OpenAI-compatible server answering at once (in its own
process, so its CPU is not counted), for 0, 1 and 3 tool calls: wall time (p50, p95), CPU ms of
the function's process, and database round trips counted at the connection. Then the chat
function's cold start with the SDK loaded by its first turn, against the built-in assistant.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.cold_start import _cold_start
from bench.harness import (
    PG_PORT,
    ROOT,
    app_environment,
    close_connections,
    event_for,
    function_source,
    give_main_thread_an_event_loop,
    invoke,
    load_function,
    new_user_id,
    pg_url,
    print_table,
    routes,
    run_from_command_line,
    summary_ms,
    temporary_database,
    use_database,
    write_results,
)
from bench.render import model_turns_table
from bench.wire_counter import CountingProxy

FAKE_KEY = "bench-key"
MESSAGES = {0: "hello there", 1: "add alpha", 3: "add alpha; beta; gamma"}
"""What the fake model's scripted agent answers with that many tool calls."""


@contextmanager
def fake_model_process() -> Iterator[str]:
    """``python -m fakeopenai`` on a free port, in its own process; its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "infra")}
    process = subprocess.Popen(
        [sys.executable, "-m", "fakeopenai", "--port", str(port), "--api-key", FAKE_KEY],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the fake model did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


def model_environment(base_url: str, assistant: str) -> dict[str, str]:
    return {
        "CHAT_ASSISTANT": assistant,
        "OPENAI_API_KEY": FAKE_KEY,
        "OPENAI_BASE_URL": base_url,
        "CHAT_MODEL": "fake-model",
    }


def _use_assistant(base_url: str, assistant: str) -> None:
    os.environ.update(model_environment(base_url, assistant))
    from todo_core.settings import get_settings  # noqa: PLC0415  (in-process benchmark)

    get_settings.cache_clear()


def _turns(database: str, base_url: str, repeat: int) -> list[dict[str, Any]]:
    give_main_thread_an_event_loop()
    proxy = CountingProxy(PG_PORT)
    use_database(pg_url(database, port=proxy.port))
    chat = load_function("chat")
    route = routes()["chat"]
    rows = []
    try:
        for assistant in ("builtin", "openai"):
            _use_assistant(base_url, assistant)
            for calls, message in MESSAGES.items():
                if assistant == "builtin" and calls == 3:
                    continue  # the built-in assistant makes one call per message
                user_id = new_user_id()
                path = f"/api/{user_id}/chat"
                first = invoke(
                    chat, event_for(route, path=path, user_id=user_id, body={"message": "hi"})
                )
                body = {"message": message, "conversation_id": first.body["conversation_id"]}
                event = event_for(route, path=path, user_id=user_id, body=body)
                for _ in range(3):  # warm: the client's connection, the statements
                    invoke(chat, event)
                walls, cpus, trips = [], [], set()
                for _ in range(repeat):
                    proxy.reset()
                    cpu_started, started = time.process_time(), time.perf_counter()
                    result = invoke(chat, event)
                    walls.append(time.perf_counter() - started)
                    cpus.append(time.process_time() - cpu_started)
                    if result.status != 200 or len(result.body["tool_calls"]) != calls:
                        raise RuntimeError(
                            f"{assistant}, {calls} calls: {result.status} {result.body}"
                        )
                    trips.add(proxy.counts().round_trips)
                if len(trips) != 1:
                    raise RuntimeError(f"round trips vary: {sorted(trips)}")
                wall = summary_ms(walls)
                rows.append(
                    {
                        "assistant": assistant,
                        "tool_calls": calls,
                        "p50_ms": wall["p50_ms"],
                        "p99_ms": wall["p99_ms"],
                        "cpu_ms": round(statistics.median(cpus) * 1000, 2),
                        "round_trips": trips.pop(),
                        "model_calls": 0 if assistant == "builtin" else 1 + (calls > 0),
                    }
                )
    finally:
        close_connections()
        proxy.close()
    return rows


def _cold_starts(database: str, base_url: str, runs: int) -> list[dict[str, Any]]:
    route = routes()["chat"]
    samples: dict[str, list[dict[str, Any]]] = {"builtin": [], "openai": []}
    for round_ in range(runs + 1):  # round 0 warms the file cache and is not counted
        for assistant in ("builtin", "openai") if round_ % 2 else ("openai", "builtin"):
            user_id = new_user_id()
            event = event_for(
                route, path=f"/api/{user_id}/chat", user_id=user_id, body={"message": "hello"}
            )
            environ = {
                **os.environ,
                **app_environment(pg_url(database)),
                **model_environment(base_url, assistant),
            }
            result = _cold_start(function_source("chat"), event, environ)
            if result["status"] != 200:
                raise RuntimeError(f"{assistant}: status {result['status']}")
            if round_:
                samples[assistant].append(result)
    return [
        {
            "assistant": assistant,
            "total_ms": round(statistics.median(s["total_ms"] for s in runs_), 1),
            "cpu_ms": round(statistics.median(s["cpu_ms"] for s in runs_), 1),
            "first_event_ms": round(statistics.median(s["first_event_ms"] for s in runs_), 1),
            "peak_rss_mb": round(max(s["peak_rss_mb"] for s in runs_), 1),
            "modules": max(s["modules"] for s in runs_),
        }
        for assistant, runs_ in samples.items()
    ]


def run(quick: bool, results_dir: Path) -> dict[str, Any]:
    repeat, runs = (5, 1) if quick else (200, 11)
    with temporary_database("model") as database, fake_model_process() as base_url:
        turns = _turns(database, base_url, repeat)
        cold = _cold_starts(database, base_url, runs)
    data = {"repeat": repeat, "cold_runs": runs, "turns": turns, "cold_start": cold}
    print_table(
        f"Model turns: the fake model answers at once (median of {repeat} warm turns)",
        *model_turns_table(data),
    )
    print_table(
        f"Chat function cold start, first turn (median of {runs} fresh processes)",
        ["assistant", "total ms", "CPU ms", "first event ms", "peak RSS MB", "modules"],
        [
            [r["assistant"], r["total_ms"], r["cpu_ms"], r["first_event_ms"], r["peak_rss_mb"],
             r["modules"]]
            for r in cold
        ],
    )  # fmt: skip
    write_results(results_dir, "model_turns", data)
    return data


if __name__ == "__main__":
    run_from_command_line(run, __doc__)
