"""Round trips per request on a warm connection, counted on the wire (BEGIN and COMMIT included),
through each function's real handler: in the direct run and, with ``TEST_VIA_PGBOUNCER=1``,
between the functions and PgBouncer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.api_client import ApiClient, Response
from tests.wire_tap import WireTap

Token = Callable[..., str]
KEY = "wire-3c9e1f70"


def _chat(
    api: ApiClient, token_for: Token, user_id: str, message: str, **options: Any
) -> Callable[[], Response]:
    body: dict[str, Any] = {"message": message}
    if options.get("conversation_id") is not None:
        body["conversation_id"] = options["conversation_id"]
    headers = {"idempotency-key": options["key"]} if options.get("key") else {}
    return lambda: api.post(
        f"/api/{user_id}/chat", token=token_for(user_id), json_body=body, headers=headers
    )


def _round_trips(wire: WireTap, request: Callable[[], Response], status: int = 200) -> int:
    response, counts = wire.measure(request)
    assert response.status == status, response.body
    return counts.round_trips


def _sql(wire: WireTap) -> list[str]:
    return wire.proxy.counts().sql


@pytest.mark.parametrize("history", [10, 1000])
def test_chat_turn_without_tool_call_is_2_round_trips_whatever_the_history(
    wire: WireTap, api: ApiClient, token_for: Token, alice: str, direct_url: str, history: int
) -> None:
    conversation_id = _chat(api, token_for, alice, "hello")().json()["conversation_id"]
    with psycopg.connect(direct_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO message (conversation_id, user_id, role, content)"
            " SELECT %s, %s, 'user', 'filler ' || n FROM generate_series(1, %s) AS n",
            (conversation_id, alice, history),
        )
    turn = _chat(api, token_for, alice, "something unclear", conversation_id=conversation_id)
    response, counts = wire.measure(turn)
    assert response.json()["tool_calls"] == []
    # Open the turn (store the question, read the window), then store the reply.
    assert counts.round_trips == 2, counts.sql


def test_chat_turn_with_one_tool_call_is_3_round_trips(
    wire: WireTap, api: ApiClient, token_for: Token, alice: str
) -> None:
    conversation_id = _chat(api, token_for, alice, "hello")().json()["conversation_id"]
    turn = _chat(api, token_for, alice, "add buy bread", conversation_id=conversation_id)
    response, counts = wire.measure(turn)
    assert [call["name"] for call in response.json()["tool_calls"]] == ["add_task"]
    assert counts.round_trips == 3, counts.sql  # open the turn, INSERT the task, finish


def test_chat_turn_in_a_new_conversation_is_2_round_trips(
    wire: WireTap, api: ApiClient, token_for: Token, alice: str
) -> None:
    assert _round_trips(wire, _chat(api, token_for, alice, "something unclear")) == 2, _sql(wire)


def test_chat_keyed_turn_and_its_replay_are_2_round_trips_each(
    wire: WireTap, api: ApiClient, token_for: Token, alice: str
) -> None:
    conversation_id = _chat(api, token_for, alice, "hello")().json()["conversation_id"]
    turn = _chat(
        api, token_for, alice, "something unclear", conversation_id=conversation_id, key=KEY
    )
    first, first_counts = wire.measure(turn)
    replay, replay_counts = wire.measure(turn)
    assert replay.body == first.body
    # A keyed turn costs what a plain one does; a replay is the failed claim plus one SELECT.
    assert first_counts.round_trips == 2, first_counts.sql
    assert replay_counts.round_trips == 2, replay_counts.sql


def test_task_read_is_1_round_trip(
    wire: WireTap,
    api: ApiClient,
    token_for: Token,
    alice: str,
    make_task: Callable[..., dict[str, Any]],
) -> None:
    task = make_task(alice)
    url = f"/api/{alice}/tasks/{task['id']}"
    assert _round_trips(wire, lambda: api.get(url, token=token_for(alice))) == 1, _sql(wire)


def test_task_list_is_1_round_trip(
    wire: WireTap,
    api: ApiClient,
    token_for: Token,
    alice: str,
    make_task: Callable[..., dict[str, Any]],
) -> None:
    for title in ("one", "two"):
        make_task(alice, title)
    request = lambda: api.get(f"/api/{alice}/tasks", token=token_for(alice))  # noqa: E731
    assert _round_trips(wire, request) == 1, _sql(wire)
    # A later page (and knowing whether one more follows) is the same one statement.
    params = {"limit": 1, "cursor": "999999"}
    paged = lambda: api.get(f"/api/{alice}/tasks", token=token_for(alice), params=params)  # noqa: E731
    assert _round_trips(wire, paged) == 1, _sql(wire)


@pytest.mark.parametrize(
    ("method", "suffix", "body", "status"),
    [
        ("POST", "", {"title": "new"}, 201),
        ("PUT", "/{id}", {"title": "renamed"}, 200),
        ("PATCH", "/{id}/complete", None, 200),
        ("DELETE", "/{id}", None, 204),
    ],
)
def test_task_write_is_1_round_trip(
    wire: WireTap,
    api: ApiClient,
    token_for: Token,
    alice: str,
    make_task: Callable[..., dict[str, Any]],
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
    status: int,
) -> None:
    task = make_task(alice)
    url = f"/api/{alice}/tasks" + suffix.format(id=task["id"])
    request = lambda: api.request(method, url, token=token_for(alice), json_body=body)  # noqa: E731
    assert _round_trips(wire, request, status) == 1, _sql(wire)


def test_task_keyed_create_and_its_replay_are_1_round_trip_each(
    wire: WireTap, api: ApiClient, token_for: Token, alice: str
) -> None:
    def create() -> Response:
        return api.post(
            f"/api/{alice}/tasks",
            token=token_for(alice),
            json_body={"title": "Buy milk"},
            headers={"idempotency-key": KEY},
        )

    first, first_counts = wire.measure(create)
    replay, replay_counts = wire.measure(create)
    assert (first.status, replay.status) == (201, 201)
    assert replay.headers["idempotent-replayed"] == "true"
    assert (first_counts.round_trips, replay_counts.round_trips) == (1, 1), (
        first_counts.sql,
        replay_counts.sql,
    )


def test_history_routes_round_trips(
    wire: WireTap, api: ApiClient, token_for: Token, alice: str
) -> None:
    conversation_id = _chat(api, token_for, alice, "add buy milk")().json()["conversation_id"]
    _chat(api, token_for, alice, "list my tasks", conversation_id=conversation_id)()
    token = token_for(alice)
    conversations = f"/api/{alice}/conversations"
    messages = f"{conversations}/{conversation_id}/messages"
    counts = {
        "list conversations": _round_trips(wire, lambda: api.get(conversations, token=token)),
        "list messages": _round_trips(wire, lambda: api.get(messages, token=token)),
        "delete conversation": _round_trips(
            wire, lambda: api.delete(f"{conversations}/{conversation_id}", token=token), 204
        ),
    }
    # A page of messages is read in one statement scoped to the user; only an empty page asks
    # whether the conversation exists at all.
    assert counts == {"list conversations": 1, "list messages": 1, "delete conversation": 1}
