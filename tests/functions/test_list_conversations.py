from collections.abc import Callable

import psycopg
import pytest

from tests.api_client import ApiClient, Response

Send = Callable[..., Response]


def test_list_conversations_most_recently_active_first(
    api: ApiClient, send_chat: Send, alice: str, token_for: Callable[..., str]
) -> None:
    first = send_chat(alice, "add one").json()["conversation_id"]
    second = send_chat(alice, "add two").json()["conversation_id"]
    send_chat(alice, "list my tasks", first)  # first becomes the most recently active
    response = api.get(f"/api/{alice}/conversations", token=token_for(alice))
    assert response.status == 200
    assert response.function == "ListConversationsFunction"
    page = response.json()
    assert [c["id"] for c in page["items"]] == [first, second]
    assert page["next_cursor"] is None
    assert set(page["items"][0]) == {"id", "title", "created_at", "updated_at"}


def test_list_conversations_pages_with_a_cursor(
    api: ApiClient, send_chat: Send, alice: str, token_for: Callable[..., str]
) -> None:
    ids = [send_chat(alice, f"add task {n}").json()["conversation_id"] for n in range(5)]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get(f"/api/{alice}/conversations", token=token_for(alice), params=params).json()
        seen += [c["id"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert pages == 3


def test_list_conversations_only_own(
    api: ApiClient, send_chat: Send, alice: str, bob: str, token_for: Callable[..., str]
) -> None:
    send_chat(alice, "add mine")
    assert api.get(f"/api/{bob}/conversations", token=token_for(bob)).json()["items"] == []
    assert api.get(f"/api/{alice}/conversations", token=token_for(bob)).status == 403


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"cursor": "garbage!"},
        {"cursor": ""},
        {"cursor": "1"},
        {"cursor": "1.0"},
        {"cursor": "-1.5"},
        {"cursor": "1234567890123456789.1"},  # 19 digits: beyond bigint
    ],
)
def test_list_conversations_bad_query_is_422(
    api: ApiClient, alice: str, token_for: Callable[..., str], params: dict[str, object]
) -> None:
    response = api.get(f"/api/{alice}/conversations", token=token_for(alice), params=params)
    assert response.status == 422
    assert response.json()["detail"][0]["loc"][0] == "query"


def test_list_conversations_cursor_past_the_last_timestamp_starts_at_the_latest(
    api: ApiClient, send_chat: Send, alice: str, token_for: Callable[..., str]
) -> None:
    # The largest cursor the pattern allows is past the year 9999: it reads as "the latest".
    conversation_id = send_chat(alice, "add one").json()["conversation_id"]
    params = {"cursor": f"{'9' * 18}.{'9' * 18}"}
    response = api.get(f"/api/{alice}/conversations", token=token_for(alice), params=params)
    assert response.status == 200, response.body
    assert [c["id"] for c in response.json()["items"]] == [conversation_id]


def test_list_conversations_default_page_is_20_and_the_largest_limit_100_is_accepted(
    api: ApiClient, alice: str, token_for: Callable[..., str], direct_url: str
) -> None:
    with psycopg.connect(direct_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO conversation (user_id, title, created_at, updated_at)"
            " SELECT %s, 'c' || n, now(), now() FROM generate_series(1, 101) AS n",
            (alice,),
        )
    url, token = f"/api/{alice}/conversations", token_for(alice)
    default = api.get(url, token=token)
    largest = api.get(url, token=token, params={"limit": 100})
    assert (default.status, largest.status) == (200, 200)
    assert [len(default.json()["items"]), len(largest.json()["items"])] == [20, 100]
    assert default.json()["next_cursor"] is not None
    assert largest.json()["next_cursor"] is not None  # 101 of them
