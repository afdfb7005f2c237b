"""Chat turn latency vs history length: warm turns through the real chat handler on PostgreSQL,
on conversations of 10, 1,000 and 100,000 stored messages, taken round-robin so that the
machine's noise hits all three alike. Each turn stores two more messages.

Target: p50 at 100,000 messages within 1.2x of p50 at 10.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import (
    NO_TOOL_MESSAGE,
    close_connections,
    event_for,
    give_main_thread_an_event_loop,
    invoke,
    load_function,
    new_user_id,
    pg_url,
    print_table,
    routes,
    run_from_command_line,
    seed_conversation,
    summary_ms,
    temporary_database,
    use_database,
    write_results,
)
from bench.render import chat_latency_table

TARGET_RATIO = 1.2
PLOT_NAME = "chat_latency.png"


def run(quick: bool, results_dir: Path) -> dict[str, Any]:
    sizes = (10, 1_000, 100_000)
    turns, warmup = (5, 2) if quick else (250, 20)
    give_main_thread_an_event_loop()
    chat = load_function("chat")
    route = routes()["chat"]
    durations: dict[int, list[float]] = {size: [] for size in sizes}
    with temporary_database("chat") as database:
        events = {}
        with psycopg.connect(pg_url(database), autocommit=True) as connection:
            for size in sizes:
                user_id = new_user_id()
                conversation = seed_conversation(connection, user_id=user_id, messages=size)
                events[size] = event_for(
                    route,
                    path=f"/api/{user_id}/chat",
                    user_id=user_id,
                    body={"message": NO_TOOL_MESSAGE, "conversation_id": conversation},
                )
            connection.execute("ANALYZE")
        use_database(pg_url(database))
        for index in range(warmup + turns):
            for size in sizes:
                started = time.perf_counter()
                response = invoke(chat, events[size])
                took = time.perf_counter() - started
                if response.status != 200 or response.body["tool_calls"]:
                    raise RuntimeError(f"turn failed: {response.status} {response.body}")
                if index >= warmup:
                    durations[size].append(took)
        close_connections()
    rows = [{"messages": size, **summary_ms(durations[size])} for size in sizes]
    ratio = round(rows[-1]["p50_ms"] / rows[0]["p50_ms"], 3)
    meets = ratio <= TARGET_RATIO
    data = {"turns": turns, "ratio_p50": ratio, "target_ratio": TARGET_RATIO, "rows": rows}
    data["meets_target"] = meets
    print_table(
        f"2. Chat turn latency vs history length ({turns} warm turns each, interleaved)",
        *chat_latency_table(data),
    )
    print(
        f"target: p50(100,000) <= {TARGET_RATIO}x p50(10): {ratio}x, {'ok' if meets else 'MISSED'}"
    )
    plot = _plot(rows, ratio, results_dir / PLOT_NAME)
    data["plot"] = plot.name
    write_results(results_dir, "chat_latency", data)
    return data


def _plot(rows: list[dict[str, Any]], ratio: float, path: Path) -> Path:
    import matplotlib  # noqa: PLC0415  # only this benchmark draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    sizes = [r["messages"] for r in rows]
    figure, axes = plt.subplots(figsize=(6, 3.4), dpi=100)
    axes.plot(sizes, [r["p50_ms"] for r in rows], "o-", label="p50")
    axes.plot(sizes, [r["p99_ms"] for r in rows], "s--", label="p99")
    axes.set_xscale("log")
    axes.set_xticks(sizes, [f"{s:,}" for s in sizes])
    axes.set_ylim(bottom=0)
    axes.set_xlabel("messages stored in the conversation")
    axes.set_ylabel("turn latency (ms)")
    axes.set_title(f"Warm chat turn, no tool call: p50(100k) / p50(10) = {ratio}x", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


if __name__ == "__main__":
    run_from_command_line(run, __doc__)
