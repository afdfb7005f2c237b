"""Scale out: N worker processes (like N Lambda containers, each with its own connection) run
chat turns at once through PgBouncer in transaction mode with a pool smaller than N. Each worker
talks in its own conversation, and every fourth turn in one of a few conversations shared by
all. Reported: turns per second, p50/p99, errors (must be 0); afterwards the database must hold
every message sent exactly once, each with exactly one reply.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import (
    SECRET,
    event_for,
    new_user_id,
    pg_url,
    print_table,
    routes,
    run_from_command_line,
    seed_conversation,
    summary_ms,
    temporary_database,
    write_results,
)
from bench.render import scale_out_table
from devserver.pgbouncer import dedicated_pgbouncer

POOL_SIZE = 5
SHARED_CONVERSATIONS = 3
SEEDED_MESSAGES = 20


def _worker(
    index: int,
    database_url: str,
    secret: str,
    events: list[dict[str, Any]],
    max_turns: int,
    seconds: float,
    ready: Barrier,
    go: Event,
    results: Any,
) -> None:
    """One container: import the chat function, then run turns until ``max_turns`` or time."""
    os.environ.update({"DATABASE_URL": database_url, "BETTER_AUTH_SECRET": secret})
    from bench.harness import give_main_thread_an_event_loop, invoke, load_function  # noqa: PLC0415

    give_main_thread_an_event_loop()
    chat = load_function("chat")
    durations: list[float] = []
    sent: list[str] = []
    errors: list[str] = []

    def turn(event: dict[str, Any], content: str) -> None:
        event = {**event, "body": event["body"].replace("{content}", content)}
        try:
            response = invoke(chat, event)
            if response.status != 200:
                errors.append(f"status {response.status}: {response.body}")
            else:
                sent.append(content)
        except Exception as error:  # counted and reported, not fatal
            errors.append(type(error).__name__)

    turn(events[0], f"hmm {index}-warm")  # a warm container: connected, not timed
    ready.wait()
    go.wait()
    deadline = time.perf_counter() + seconds
    for number in range(max_turns):
        if time.perf_counter() > deadline:
            break
        started = time.perf_counter()
        turn(events[number % len(events)], f"hmm {index}-{number}")
        durations.append(time.perf_counter() - started)
    results.put({"durations": durations, "sent": sent, "errors": errors, "ended": time.time()})


def _scenario(
    database: str, bouncer_port: int, workers: int, max_turns: int, seconds: float
) -> dict[str, Any]:
    route = routes()["chat"]
    shared_user = new_user_id()
    with psycopg.connect(pg_url(database), autocommit=True) as connection:
        connection.execute("TRUNCATE conversation, message RESTART IDENTITY CASCADE")
        shared = [
            seed_conversation(connection, user_id=shared_user, messages=SEEDED_MESSAGES)
            for _ in range(SHARED_CONVERSATIONS)
        ]
        plans = []
        for index in range(workers):
            user_id = new_user_id()
            own = seed_conversation(connection, user_id=user_id, messages=SEEDED_MESSAGES)

            def chat_event(user: str, conversation: int) -> dict[str, Any]:
                body = {"message": "{content}", "conversation_id": conversation}
                return event_for(route, path=f"/api/{user}/chat", user_id=user, body=body)

            own_event = chat_event(user_id, own)
            shared_event = chat_event(shared_user, shared[index % SHARED_CONVERSATIONS])
            plans.append([own_event, own_event, own_event, shared_event])
        connection.execute("ANALYZE")
    context = multiprocessing.get_context("spawn")
    ready, go, results = context.Barrier(workers + 1), context.Event(), context.Queue()
    url = pg_url(database, port=bouncer_port)
    processes = [
        context.Process(
            target=_worker,
            args=(i, url, SECRET, plans[i], max_turns, seconds, ready, go, results),
        )
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    ready.wait(timeout=300)
    started = time.time()
    go.set()
    outcomes = [results.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join()
    window = max(o["ended"] for o in outcomes) - started
    durations = [d for o in outcomes for d in o["durations"]]
    sent = [s for o in outcomes for s in o["sent"]]
    errors = [e for o in outcomes for e in o["errors"]]
    stored = _check_stored(database, sent, workers)
    return {
        "workers": workers,
        "pool_size": POOL_SIZE,
        "turns": len(durations),
        "turns_per_second": round(len(durations) / window, 1),
        **summary_ms(durations),
        "errors": len(errors),
        "error_samples": errors[:5],
        **stored,
    }


def _check_stored(database: str, sent: list[str], workers: int) -> dict[str, Any]:
    """Every message sent is stored exactly once, with exactly one reply; nothing else."""
    with psycopg.connect(pg_url(database), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT q.content, count(*) OVER (PARTITION BY q.content),"
            " (SELECT count(*) FROM message AS r WHERE r.reply_to_id = q.id)"
            " FROM message AS q WHERE q.role = 'user' AND q.content LIKE 'hmm %'"
        ).fetchall()
        seeded = connection.execute("SELECT count(*) FROM message WHERE content LIKE 'question %'")
        seeded_count = seeded.fetchone()
    stored = {content for content, _, _ in rows}
    exactly_once = (
        len(rows) == len(sent)
        and stored == set(sent)
        and all(copies == 1 and replies == 1 for _, copies, replies in rows)
    )
    expected_seeded = (workers + SHARED_CONVERSATIONS) * SEEDED_MESSAGES // 2
    return {
        "messages_sent": len(sent),
        "messages_stored": len(rows),
        "stored_exactly_once_with_one_reply": exactly_once and seeded_count == (expected_seeded,),
    }


def run(quick: bool, results_dir: Path) -> dict[str, Any]:
    counts, max_turns, seconds = ((2, 3), 4, 5.0) if quick else ((10, 25, 50), 400, 10.0)
    rows = []
    with temporary_database("scale") as database, dedicated_pgbouncer(POOL_SIZE) as bouncer:
        for workers in counts:
            rows.append(_scenario(database, bouncer.port, workers, max_turns, seconds))
    ok = all(r["errors"] == 0 and r["stored_exactly_once_with_one_reply"] for r in rows)
    data = {"pool_size": POOL_SIZE, "meets_target": ok, "rows": rows}
    print_table(
        f"5. Scale out: N processes, one connection each, through PgBouncer (transaction mode,"
        f" pool {POOL_SIZE}), up to {seconds:.0f} s each",
        *scale_out_table(data),
    )
    print(f"target: zero errors, every message stored exactly once: {'ok' if ok else 'MISSED'}")
    write_results(results_dir, "scale_out", data)
    return data


if __name__ == "__main__":
    run_from_command_line(run, __doc__)
