"""Waiting for something another process or thread will do: poll a condition until a deadline,
instead of sleeping for a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import psycopg

Value = TypeVar("Value")


def wait_until(
    condition: Callable[[], Value], *, timeout: float = 5.0, interval: float = 0.02
) -> Value:
    """``condition()``'s first truthy value; fails the test if none comes within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {condition}")
        time.sleep(interval)


def wait_for_lock_waiters(
    direct_url: str, sessions: int = 1, *, timeout: float = 10.0
) -> list[int]:
    """The process ids of the test database's sessions waiting on a lock, once there are at least
    ``sessions`` of them (a function's statement blocked by a lock the test holds)."""

    def waiting() -> list[int]:
        with psycopg.connect(direct_url, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchall()
        pids = [int(pid) for (pid,) in rows]
        return pids if len(pids) >= sessions else []

    return wait_until(waiting, timeout=timeout)
