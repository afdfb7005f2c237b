"""Round trips per request, counted at the connection by a proxy that reads the wire protocol:
statements and transaction control apart, directly to PostgreSQL and through PgBouncer
(transaction mode). Warm requests reuse the container's connection; the first request of a
container (connection startup included) is shown apart.

Target: at most 5 round trips for a chat turn without tool calls.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import (
    NO_TOOL_MESSAGE,
    PG_PORT,
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
    temporary_database,
    use_database,
    write_results,
)
from bench.render import ROUND_TRIPS_LABELS, round_trips_table
from bench.wire_counter import CountingProxy, WireCounts
from devserver.pgbouncer import dedicated_pgbouncer

TARGET_NO_TOOL_TURN = 5
HISTORY = 1000


def _measure(
    proxy: CountingProxy, request: Callable[[], int], *, repeat: int
) -> tuple[WireCounts, list[int]]:
    """Counts of the last of ``repeat`` requests, and the round trips of each (all must match)."""
    per_request = []
    counts = WireCounts()
    for _ in range(repeat):
        proxy.reset()
        status = request()
        if status >= 400:
            raise RuntimeError(f"request failed with {status}")
        counts = proxy.counts()
        per_request.append(counts.round_trips)
    return counts, per_request


def _path_rows(database: str, path: str, upstream_port: int, repeat: int) -> list[dict[str, Any]]:
    user_id = new_user_id()
    with psycopg.connect(pg_url(database), autocommit=True) as connection:
        conversation = seed_conversation(connection, user_id=user_id, messages=HISTORY)
        task = connection.execute(
            "INSERT INTO task (user_id, title, completed, created_at, updated_at)"
            " VALUES (%s, 'read me', false, now(), now()) RETURNING id",
            (user_id,),
        ).fetchone()
        connection.execute("ANALYZE")
    assert task is not None
    by_name = routes()
    chat, get_task = load_function("chat"), load_function("get_task")
    proxy = CountingProxy(upstream_port)
    use_database(pg_url(database, port=proxy.port))
    api = f"/api/{user_id}"

    def turn(message: str, conversation_id: int | None = conversation) -> Callable[[], int]:
        body: dict[str, Any] = {"message": message}
        if conversation_id is not None:
            body["conversation_id"] = conversation_id
        event = event_for(by_name["chat"], path=f"{api}/chat", user_id=user_id, body=body)
        return lambda: invoke(chat, event).status

    def read_task() -> int:
        event = event_for(by_name["get_task"], path=f"{api}/tasks/{task[0]}", user_id=user_id)
        return invoke(get_task, event).status

    scenarios: list[tuple[str, Callable[[], int], int]] = [
        ("first request of a container (chat turn)", turn(NO_TOOL_MESSAGE), 1),
        (f"chat turn, no tool call ({HISTORY:,} msgs)", turn(NO_TOOL_MESSAGE), repeat),
        ("chat turn, one tool call (add_task)", turn("add buy milk"), repeat),
        ("chat turn, new conversation", turn(NO_TOOL_MESSAGE, None), repeat),
        ("task read (get_task), for reference", read_task, repeat),
    ]
    rows = []
    try:
        for label, request, times in scenarios:
            counts, per_request = _measure(proxy, request, repeat=times)
            if len(set(per_request)) != 1:
                raise RuntimeError(f"{label}: round trips vary between requests: {per_request}")
            rows.append(
                {
                    "path": path,
                    "request": label,
                    "round_trips": counts.round_trips,
                    "statements": counts.statements,
                    "transaction_control": counts.transaction_control,
                    "connection_startups": counts.startups,
                    "sql": counts.sql,
                }
            )
    finally:
        close_connections()
        proxy.close()
    return rows


def run(quick: bool, results_dir: Path) -> dict[str, Any]:
    give_main_thread_an_event_loop()
    repeat = 2 if quick else 5
    rows: list[dict[str, Any]] = []
    with temporary_database("rt") as database, dedicated_pgbouncer() as bouncer:
        rows += _path_rows(database, "direct", PG_PORT, repeat)
        rows += _path_rows(database, "pgbouncer", bouncer.port, repeat)
    no_tool = [r for r in rows if r["request"].startswith("chat turn, no tool")]
    meets = all(r["round_trips"] <= TARGET_NO_TOOL_TURN for r in no_tool)
    data = {"target_round_trips": TARGET_NO_TOOL_TURN, "meets_target": meets, "rows": rows}
    print_table(
        "3. Round trips per request, counted at the connection (warm unless noted)",
        *round_trips_table(data),
        left_columns=ROUND_TRIPS_LABELS,
    )
    print(
        f"target: <= {TARGET_NO_TOOL_TURN} round trips for a turn without tool calls:"
        f" {'ok' if meets else 'MISSED'}"
    )
    write_results(results_dir, "round_trips", data)
    return data


if __name__ == "__main__":
    run_from_command_line(run, __doc__)
