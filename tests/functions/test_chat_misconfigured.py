"""A chat function whose ``CHAT_ASSISTANT`` names no assistant answers every turn with the
README's 500 ``Server misconfigured`` and stores nothing: no question without a reply, no
Idempotency-Key leased for 45 s, no turn counted against the user's limit."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from tests.api_client import Response
from tests.conftest import functions_environment


@pytest.fixture
def misconfigured(app_environment: dict[str, str]) -> Iterator[None]:
    with functions_environment({"CHAT_ASSISTANT": "gpt", "CHAT_TURNS_PER_WINDOW": "30"}):
        yield


def _count(direct_url: str, table: str) -> int:
    with psycopg.connect(direct_url) as connection:
        row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    assert row is not None
    return int(row[0])


@pytest.mark.usefixtures("misconfigured")
@pytest.mark.parametrize("key", [None, "turn-misconfigured"])
def test_chat_unknown_assistant_is_500_misconfigured_and_stores_nothing(
    send_chat: Callable[..., Response],
    alice: str,
    direct_url: str,
    key: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = send_chat(alice, "add buy milk", key=key)
    assert (response.status, response.json()) == (500, {"detail": "Server misconfigured"})
    assert "CHAT_ASSISTANT" in caplog.text  # the log names the setting
    for table in ("conversation", "message", "idempotency_key", "chat_rate"):
        assert _count(direct_url, table) == 0, table


def test_chat_turn_after_the_setting_is_fixed_answers_at_once(
    send_chat: Callable[..., Response], alice: str, app_environment: dict[str, str]
) -> None:
    with functions_environment({"CHAT_ASSISTANT": "gpt"}):
        assert send_chat(alice, "add buy milk", key="k-fixed").status == 500
    answered = send_chat(alice, "add buy milk", key="k-fixed")  # not a 409 on a leased key
    assert answered.status == 200, answered.body
    assert answered.json()["response"] == "Added “buy milk” (task 1)."
