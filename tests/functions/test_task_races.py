"""Task writes racing in one process with six database connections (six containers
racing on the database, not queueing for one connection): toggles, deletes, updates of one
task, and keyed creates whose keys expired, whose lazy purge of the user's expired keys meets
the other request's take-over."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.api_client import ApiClient, Response
from tests.conftest import functions_environment

THREADS = 6


@pytest.fixture
def six_connections(api: ApiClient) -> Iterator[None]:
    with functions_environment({"DB_POOL_SIZE": str(THREADS)}):
        yield


Call = tuple[str, str, dict[str, Any]]  # method, url, request keywords


def _at_once(api: ApiClient, calls: list[Call]) -> list[Response]:
    barrier = threading.Barrier(len(calls))

    def run(call: Call) -> Response:
        method, url, keywords = call
        barrier.wait(timeout=30)
        return api.request(method, url, **keywords)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result(timeout=60) for f in [pool.submit(run, c) for c in calls]]


def _rows(direct_url: str, query: str, *parameters: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(direct_url) as connection:
        return connection.execute(query, parameters).fetchall()


@pytest.mark.usefixtures("six_connections")
def test_racing_toggles_each_flip_once_and_deletes_answer_one_204(
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    make_task: Callable[..., Any],
    direct_url: str,
) -> None:
    auth = {"token": token_for(alice)}
    for _ in range(5):
        task = make_task(alice)
        url = f"/api/{alice}/tasks/{task['id']}"
        toggles = _at_once(api, [("PATCH", f"{url}/complete", auth)] * THREADS)
        assert [r.status for r in toggles] == [200] * THREADS
        # Each toggle saw the state the one before it left: half ended completed, half pending.
        assert sorted(r.json()["completed"] for r in toggles) == [False] * 3 + [True] * 3
        stored = _rows(direct_url, "SELECT completed FROM task WHERE id = %s", task["id"])
        assert stored == [(False,)]
        mixed = _at_once(
            api,
            [
                ("DELETE", url, auth),
                ("DELETE", url, auth),
                ("PUT", url, {**auth, "json_body": {"title": "renamed"}}),
                ("PATCH", f"{url}/complete", auth),
                ("DELETE", url, auth),
                ("GET", url, auth),
            ],
        )
        deletes = sorted(mixed[n].status for n in (0, 1, 4))
        assert deletes == [204, 404, 404], [(r.status, r.body) for r in mixed]
        assert {mixed[n].status for n in (2, 3, 5)} <= {200, 404}
        assert _rows(direct_url, "SELECT id FROM task WHERE id = %s", task["id"]) == []


def _expired_key(direct_url: str, user_id: str, key: str, age: timedelta) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(direct_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO idempotency_key (user_id, key, request_hash, status_code, response,"
            " created_at, expires_at) VALUES (%s, %s, %s, 201, '{}', %s, %s)",
            (user_id, key, "0" * 64, now - age - timedelta(days=1), now - age),
        )


def _waiting_on_locks(direct_url: str) -> int:
    [(waiting,)] = _rows(
        direct_url,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'todo-api'"
        " AND wait_event_type = 'Lock'",
    )
    return int(waiting)


@pytest.mark.usefixtures("six_connections")
def test_keyed_creates_taking_over_expired_keys_do_not_deadlock_on_the_purge(
    api: ApiClient, alice: str, token_for: Callable[..., str], direct_url: str
) -> None:
    """Two retries by one user, each reusing a key of its own that expired: each takes its key
    over (and so locks its row), then purges the user's other expired keys, the other's among
    them. A third expired key, held by the test, makes both reach their purge before either
    finishes: waiting there on each other's key was a deadlock, one of them a 503."""
    token = token_for(alice)
    _expired_key(direct_url, alice, "held", timedelta(days=3))
    _expired_key(direct_url, alice, "first", timedelta(days=2))
    _expired_key(direct_url, alice, "second", timedelta(days=2))
    with psycopg.connect(direct_url) as holder:
        holder.execute(
            "SELECT 1 FROM idempotency_key WHERE user_id = %s AND key = 'held' FOR UPDATE",
            (alice,),
        )

        def create(key: str) -> Callable[[], Response]:
            return lambda: api.post(
                f"/api/{alice}/tasks",
                token=token,
                json_body={"title": key},
                headers={"idempotency-key": key},
            )

        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(create(key)) for key in ("first", "second")]
            # Until both wait on the held key (a purge that waits for it) or both are done (one
            # that skips it); within the database's idle-in-transaction timeout.
            deadline = time.monotonic() + 3
            while (
                _waiting_on_locks(direct_url) < 2
                and not all(future.done() for future in futures)
                and time.monotonic() < deadline
            ):
                time.sleep(0.02)
            holder.rollback()
            responses = [future.result(timeout=30) for future in futures]
    assert [r.status for r in responses] == [201, 201], [r.body for r in responses]
    titles = _rows(direct_url, "SELECT title FROM task WHERE user_id = %s ORDER BY title", alice)
    assert titles == [("first",), ("second",)]
    # Each took its own key over; the held one was left for a later purge (or purged).
    keys = _rows(
        direct_url, "SELECT key FROM idempotency_key WHERE user_id = %s ORDER BY key", alice
    )
    assert keys in ([("first",), ("second",)], [("first",), ("held",), ("second",)])


@pytest.mark.usefixtures("six_connections")
def test_racing_retries_of_an_expired_key_store_one_task_and_agree(
    api: ApiClient, alice: str, token_for: Callable[..., str], direct_url: str
) -> None:
    """Six retries at once of a request whose key expired (another request's, long ago): one
    takes the key over and stores one task, the others replay its response."""
    auth = {"token": token_for(alice)}
    for round_number in range(5):
        key = f"old-{round_number}"
        _expired_key(direct_url, alice, key, timedelta(hours=1))
        keywords = {**auth, "json_body": {"title": key}, "headers": {"idempotency-key": key}}
        responses = _at_once(api, [("POST", f"/api/{alice}/tasks", keywords)] * THREADS)
        assert [r.status for r in responses] == [201] * THREADS, [r.body for r in responses]
        assert len({r.body for r in responses}) == 1
        replayed = [r.headers.get("idempotent-replayed") for r in responses]
        assert sorted(replayed, key=str) == [None] + ["true"] * (THREADS - 1)
        titles = _rows(direct_url, "SELECT count(*) FROM task WHERE title = %s", key)
        assert titles == [(1,)]


@pytest.mark.usefixtures("six_connections")
def test_racing_requests_of_one_key_with_two_bodies_store_one_task(
    api: ApiClient, alice: str, token_for: Callable[..., str], direct_url: str
) -> None:
    """One key sent at once with two different bodies (a client bug): one body wins and is
    stored once, its copies get its response, the other body's copies get the 422."""
    auth = {"token": token_for(alice)}
    for round_number in range(5):
        key = f"two-bodies-{round_number}"
        calls: list[Call] = [
            (
                "POST",
                f"/api/{alice}/tasks",
                {**auth, "json_body": {"title": title}, "headers": {"idempotency-key": key}},
            )
            for title in ("left", "right") * (THREADS // 2)
        ]
        responses = _at_once(api, calls)
        by_title: dict[str, set[int]] = {"left": set(), "right": set()}
        for call, response in zip(calls, responses, strict=True):
            by_title[call[2]["json_body"]["title"]].add(response.status)
        assert sorted(map(sorted, by_title.values())) == [[201], [422]], by_title
        winner = next(t for t, statuses in by_title.items() if statuses == {201})
        assert len({r.body for r in responses if r.status == 201}) == 1
        stored = _rows(direct_url, "SELECT title FROM task WHERE user_id = %s ORDER BY id", alice)
        assert len(stored) == round_number + 1  # one task per round
        assert stored[-1] == (winner,)
