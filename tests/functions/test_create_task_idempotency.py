"""POST /api/{user_id}/tasks with an Idempotency-Key: retries, even racing ones, store one task."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import psycopg
import pytest

from tests.api_client import ApiClient, Response
from tests.devserver_process import race_keyed_posts
from todo_core.api import create_app
from todo_core.tasks.routes import router

KEY = "0b6f3c5e-7d1a-4b8e-9a41-2f6d8c3e1a77"


@pytest.fixture
def create(api: ApiClient, token_for: Callable[..., str]) -> Callable[..., Response]:
    def send(user_id: str, body: object, key: str | None = KEY) -> Response:
        headers = {"idempotency-key": key} if key is not None else {}
        return api.post(
            f"/api/{user_id}/tasks", token=token_for(user_id), json_body=body, headers=headers
        )

    return send


def _count(direct_url: str, query: str, *args: object) -> int:
    with psycopg.connect(direct_url) as connection:
        row = connection.execute(query, args).fetchone()
    assert row is not None
    return int(row[0])


def _tasks(direct_url: str) -> int:
    return _count(direct_url, "SELECT count(*) FROM task")


def test_create_task_retry_with_same_key_replays_the_first_response(
    create: Callable[..., Response],
    api: ApiClient,
    token_for: Callable[..., str],
    alice: str,
    direct_url: str,
) -> None:
    first = create(alice, {"title": "Buy milk", "description": "2 litres"})
    retry = create(alice, {"title": "Buy milk", "description": "2 litres"})
    assert (first.status, retry.status) == (201, 201)
    assert retry.body == first.body  # byte for byte
    assert "idempotent-replayed" not in first.headers
    assert retry.headers["idempotent-replayed"] == "true"
    assert _tasks(direct_url) == 1
    # The keyed response is the same document a GET of the stored task gives.
    stored = api.get(f"/api/{alice}/tasks/{first.json()['id']}", token=token_for(alice))
    assert stored.body == first.body


def test_create_task_retry_replays_even_after_the_task_changed(
    create: Callable[..., Response],
    api: ApiClient,
    token_for: Callable[..., str],
    alice: str,
    direct_url: str,
) -> None:
    first = create(alice, {"title": "Buy milk"})
    task_url = f"/api/{alice}/tasks/{first.json()['id']}"
    assert api.delete(task_url, token=token_for(alice)).status == 204
    retry = create(alice, {"title": "Buy milk"})
    assert (retry.status, retry.body) == (201, first.body)
    assert _tasks(direct_url) == 0  # the retry did not bring it back


def test_create_task_same_request_spelt_differently_is_a_replay(
    api: ApiClient, token_for: Callable[..., str], alice: str, direct_url: str
) -> None:
    url, token = f"/api/{alice}/tasks", token_for(alice)
    headers = {"content-type": "application/json", "idempotency-key": KEY}
    first = api.post(
        url, token=token, body=b'{"title": "Milk", "description": null}', headers=headers
    )
    retry = api.post(
        url, token=token, body=b'{ "description":null,"title":"  Milk  " }', headers=headers
    )
    assert (first.status, retry.status) == (201, 201)
    assert retry.body == first.body
    assert _tasks(direct_url) == 1


def test_create_task_same_key_other_body_is_422_and_stores_nothing(
    create: Callable[..., Response], alice: str, direct_url: str
) -> None:
    first = create(alice, {"title": "Buy milk"})
    other = create(alice, {"title": "Buy bread"})
    assert first.status == 201
    assert other.status == 422
    assert other.json() == {"detail": "Idempotency-Key was already used with a different request"}
    assert _tasks(direct_url) == 1
    assert create(alice, {"title": "Buy milk"}).body == first.body  # the key still replays


def test_create_task_same_key_for_another_user_is_independent(
    create: Callable[..., Response], alice: str, bob: str, direct_url: str
) -> None:
    mine = create(alice, {"title": "Buy milk"})
    theirs = create(bob, {"title": "Buy bread"})
    assert (mine.status, theirs.status) == (201, 201)
    assert theirs.json()["user_id"] == bob
    assert theirs.json()["id"] != mine.json()["id"]
    assert _tasks(direct_url) == 2
    assert _count(direct_url, "SELECT count(*) FROM idempotency_key WHERE key = %s", KEY) == 2
    # Each one's retry replays their own response, never the other user's.
    assert create(bob, {"title": "Buy bread"}).body == theirs.body
    assert create(alice, {"title": "Buy milk"}).body == mine.body
    assert _tasks(direct_url) == 2


def test_create_task_key_is_kept_24_hours(
    create: Callable[..., Response], alice: str, direct_url: str
) -> None:
    assert create(alice, {"title": "Buy milk"}).status == 201
    with psycopg.connect(direct_url) as connection:
        [(kept,)] = connection.execute(
            "SELECT expires_at - created_at FROM idempotency_key"
        ).fetchall()
    assert kept == timedelta(hours=24)


def test_create_task_without_key_is_not_deduplicated(
    create: Callable[..., Response], alice: str, direct_url: str
) -> None:
    for _ in range(2):
        assert create(alice, {"title": "Buy milk"}, key=None).status == 201
    assert _tasks(direct_url) == 2
    assert _count(direct_url, "SELECT count(*) FROM idempotency_key") == 0


@pytest.mark.parametrize(
    "key",
    ["", " ", "k" * 256, "tab\tinside", "bell\x07", " leading", "trailing ", "del\x7f"],
    ids=["empty", "space", "too-long", "tab", "control", "leading", "trailing", "del"],
)
def test_create_task_invalid_key_is_422_and_stores_nothing(
    create: Callable[..., Response], alice: str, direct_url: str, key: str
) -> None:
    response = create(alice, {"title": "Buy milk"}, key=key)
    assert response.status == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["header", "Idempotency-Key"]
    assert _tasks(direct_url) == 0


def test_create_task_longest_key_is_accepted(
    create: Callable[..., Response], alice: str, direct_url: str
) -> None:
    key = "a b~" * 63 + "xyz"
    assert len(key) == 255
    assert create(alice, {"title": "Buy milk"}, key=key).status == 201
    assert create(alice, {"title": "Buy milk"}, key=key).headers["idempotent-replayed"] == "true"
    assert _tasks(direct_url) == 1


def test_create_task_expired_key_is_a_new_request(
    create: Callable[..., Response], alice: str, direct_url: str
) -> None:
    first = create(alice, {"title": "Buy milk"})
    with psycopg.connect(direct_url, autocommit=True) as connection:
        connection.execute("UPDATE idempotency_key SET expires_at = now() - interval '1 second'")
    again = create(alice, {"title": "Buy bread"})  # another body is fine: the key is forgotten
    assert again.status == 201
    assert "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert _tasks(direct_url) == 2
    replay = create(alice, {"title": "Buy bread"})
    assert replay.body == again.body
    assert _count(direct_url, "SELECT count(*) FROM idempotency_key") == 1


def test_create_task_purges_only_the_users_expired_keys(
    create: Callable[..., Response], alice: str, bob: str, direct_url: str
) -> None:
    for user, key in ((alice, "old-1"), (alice, "old-2"), (bob, "old-3"), (alice, "live")):
        assert create(user, {"title": key}, key=key).status == 201
    with psycopg.connect(direct_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE idempotency_key SET expires_at = now() - interval '1 second'"
            " WHERE key LIKE 'old-%'"
        )
    assert create(alice, {"title": "new"}, key="new").status == 201
    with psycopg.connect(direct_url) as connection:
        keys = connection.execute(
            "SELECT user_id, key FROM idempotency_key ORDER BY key"
        ).fetchall()
    assert keys == [(alice, "live"), (alice, "new"), (bob, "old-3")]


def test_create_task_key_is_documented_in_openapi() -> None:
    spec = create_app(router, route="create_task").openapi()
    parameters = spec["paths"]["/api/{user_id}/tasks"]["post"]["parameters"]
    [header] = [p for p in parameters if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key"
    assert header["required"] is False


def test_create_task_racing_retries_across_instances_store_one_task(
    three_instances: list[str], alice: str, token_for: Callable[..., str], direct_url: str
) -> None:
    rounds = 10
    bodies: list[object] = [{"title": f"t{n}"} for n in range(rounds)]
    for results in race_keyed_posts(
        three_instances, f"/api/{alice}/tasks", token=token_for(alice), bodies=bodies
    ):
        assert {status for status, _ in results} == {201}
        assert len({body for _, body in results}) == 1, results
    with psycopg.connect(direct_url) as connection:
        titles = sorted(row[0] for row in connection.execute("SELECT title FROM task"))
    assert titles == sorted(f"t{n}" for n in range(rounds))
