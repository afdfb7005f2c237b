"""The cost guard: at most CHAT_TURNS_PER_WINDOW chat turns per user per window, checked in the
statement that opens the turn (no extra round trip), 429 with Retry-After beyond it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tests.api_client import Response
from tests.conftest import functions_environment
from tests.polling import wait_for_lock_waiters
from tests.wire_tap import WireTap

LIMIT = 3


@pytest.fixture
def limited(app_environment: dict[str, str]) -> Iterator[None]:
    with functions_environment(
        {"CHAT_TURNS_PER_WINDOW": str(LIMIT), "CHAT_RATE_WINDOW_SECONDS": "60"}
    ):
        yield


@pytest.fixture
def containers(limited: None) -> Iterator[None]:
    """Six connections for this process's functions: its threads race as six containers would,
    on the database, rather than queueing for one connection."""
    with functions_environment({"DB_POOL_SIZE": "6"}):
        yield


@pytest.fixture
def chat(send_chat: Callable[..., Response]) -> Callable[..., Response]:
    def send(user_id: str, message: str = "hello", key: str | None = None) -> Response:
        return send_chat(user_id, message, key=key)

    return send


def _user_messages(direct_url: str, user_id: str) -> int:
    with psycopg.connect(direct_url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM message WHERE user_id = %s AND role = 'user'", (user_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.usefixtures("limited")
def test_chat_rate_limit_answers_429_with_retry_after_and_stores_nothing(
    chat: Callable[..., Response], alice: str, bob: str, direct_url: str
) -> None:
    assert [chat(alice).status for _ in range(LIMIT)] == [200] * LIMIT
    refused = chat(alice, key="over-the-limit")
    assert refused.status == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json() == {
        "detail": "Too many chat messages; please wait before sending another"
    }
    assert _user_messages(direct_url, alice) == LIMIT  # nothing stored, no key claimed
    assert chat(bob).status == 200  # per user


@pytest.mark.usefixtures("limited")
def test_chat_rate_limit_window_starts_afresh(
    chat: Callable[..., Response], alice: str, direct_url: str
) -> None:
    for _ in range(LIMIT):
        assert chat(alice).status == 200
    assert chat(alice).status == 429
    with psycopg.connect(direct_url, autocommit=True) as connection:  # the window has passed
        connection.execute(
            "UPDATE chat_rate SET window_start = now() - interval '61 seconds' WHERE user_id = %s",
            (alice,),
        )
    assert chat(alice).status == 200


@pytest.mark.usefixtures("limited")
def test_chat_rate_limit_does_not_count_a_retry_of_a_held_key(
    chat: Callable[..., Response], alice: str
) -> None:
    first = chat(alice, "add milk", key="k1")
    for _ in range(LIMIT - 1):
        assert chat(alice).status == 200
    replay = chat(alice, "add milk", key="k1")  # at the limit: a replay still answers
    assert (replay.status, replay.body) == (200, first.body)


@pytest.mark.usefixtures("containers")
def test_chat_rate_limit_racing_turns_get_exactly_the_limit(
    chat: Callable[..., Response], alice: str, direct_url: str
) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda _: chat(alice).status, range(2 * LIMIT)))
    assert sorted(statuses) == [200] * LIMIT + [429] * LIMIT
    assert _user_messages(direct_url, alice) == LIMIT


def _race_two_attempts(
    chat: Callable[..., Response], user: str, direct_url: str, key: str
) -> list[Response]:
    """Two attempts at one keyed turn, both started before either has claimed the key: both
    statements wait on the user's count, held here until both do."""
    with psycopg.connect(direct_url) as holding:
        holding.execute("SELECT FROM chat_rate WHERE user_id = %s FOR UPDATE", (user,))
        with ThreadPoolExecutor(max_workers=2) as pool:
            attempts = [pool.submit(chat, user, "add milk", key) for _ in range(2)]
            wait_for_lock_waiters(direct_url, 2)
            holding.commit()
            return [attempt.result(timeout=30) for attempt in attempts]


@pytest.mark.usefixtures("containers")
def test_chat_rate_limit_counts_racing_attempts_at_one_keyed_turn_once(
    chat: Callable[..., Response], alice: str, direct_url: str
) -> None:
    """A retry sent before the first attempt committed: both statements start before either
    has claimed the key (both wait on the user's count, held here), so both count the turn;
    the one that loses the claim takes its count back, and the user keeps every turn."""
    assert chat(alice).status == 200  # the user's count exists, at 1
    answers = _race_two_attempts(chat, alice, direct_url, "k1")
    assert 200 in [answer.status for answer in answers], [a.body for a in answers]
    assert all(answer.status in (200, 409) for answer in answers), [a.body for a in answers]
    assert _user_messages(direct_url, alice) == 2  # the turn is stored once
    with psycopg.connect(direct_url) as connection:
        row = connection.execute(
            "SELECT turns FROM chat_rate WHERE user_id = %s", (alice,)
        ).fetchone()
    assert row == (2,)
    assert chat(alice).status == 200  # the third turn of three
    assert chat(alice).status == 429


@pytest.mark.usefixtures("limited")
def test_chat_rate_limit_costs_no_round_trip(
    chat: Callable[..., Response], alice: str, wire: WireTap
) -> None:
    answered, counts = wire.measure(lambda: chat(alice, "something unclear"))
    assert answered.status == 200
    assert counts.round_trips == 2, counts.sql  # open the turn (counted in it), store the reply
    for _ in range(LIMIT - 1):
        assert chat(alice).status == 200
    refused, counts = wire.measure(lambda: chat(alice))
    assert refused.status == 429
    assert counts.round_trips == 1, counts.sql  # the opening statement, which stored nothing


@pytest.mark.usefixtures("containers")
def test_chat_rate_limit_racing_retry_of_the_last_turn_is_not_refused(
    chat: Callable[..., Response], alice: str, direct_url: str
) -> None:
    """The same race at the user's last turn of the window: the attempt that loses the key
    finds the count at the limit (the winner's), but it is a retry, not a new turn: it gets the
    turn's answer (or a 409 while it runs), never a 429."""
    for _ in range(LIMIT - 1):
        assert chat(alice).status == 200
    answers = _race_two_attempts(chat, alice, direct_url, "k-last")
    assert sorted(answer.status for answer in answers) in ([200, 200], [200, 409]), [
        (a.status, a.body) for a in answers
    ]
    assert _user_messages(direct_url, alice) == LIMIT
