"""The verified-token cache used by several threads at once. The local server (and the
race tests) run a function's containers as threads of one process, sharing ``todo_core`` and so
``deps.verified_tokens``: once it is full, two requests evicting its oldest entry at the same
time must not fail (a KeyError there was a 500)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from tests.conftest import TEST_SECRET
from todo_core import deps
from todo_core.auth import VerifiedToken
from todo_core.deps import VerifiedTokens
from todo_core.settings import Settings, load_settings

SETTINGS = load_settings(
    {"DATABASE_URL": "postgresql://x@127.0.0.1/x", "BETTER_AUTH_SECRET": TEST_SECRET}
)
THREADS = 8
TOKENS_PER_THREAD = 20_000


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_verified_tokens_evicted_by_racing_threads(
    monkeypatch: pytest.MonkeyPatch, frequent_thread_switches: None
) -> None:
    def verified(token: str, *, settings: Settings) -> VerifiedToken:
        return VerifiedToken(subject=token.partition("-")[0], algorithm="HS256", expires_at=1e12)

    monkeypatch.setattr(deps, "verify", verified)
    cache = VerifiedTokens(max_entries=2)  # full after two tokens: every new one evicts
    failures: list[str] = []
    start = threading.Barrier(THREADS)

    def one_container(number: int) -> None:
        start.wait()
        try:
            for n in range(TOKENS_PER_THREAD):
                assert cache.subject(f"user{number}-{n}", SETTINGS) == f"user{number}"
        except Exception as error:  # reported below
            failures.append(repr(error))

    threads = [threading.Thread(target=one_container, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(cache._entries) <= 2
