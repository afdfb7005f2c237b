"""Waiting for something another process or thread will do: poll a condition until a deadline,
instead of sleeping for a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

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
