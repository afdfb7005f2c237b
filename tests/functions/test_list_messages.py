import json
from collections.abc import Callable

import psycopg
import pytest

from tests.api_client import ApiClient, Response

Send = Callable[..., Response]


def test_list_messages_in_turn_order_with_tool_calls(
    api: ApiClient, send_chat: Send, alice: str, token_for: Callable[..., str]
) -> None:
    first = send_chat(alice, "add buy milk").json()
    conversation_id = first["conversation_id"]
    send_chat(alice, "list my tasks", conversation_id)
    response = api.get(
        f"/api/{alice}/conversations/{conversation_id}/messages", token=token_for(alice)
    )
    assert response.status == 200
    assert response.function == "ListMessagesFunction"
    page = response.json()
    assert [(m["role"], m["content"][:12]) for m in page["items"]] == [
        ("user", "add buy milk"),
        ("assistant", "Added “buy m"),
        ("user", "list my task"),
        ("assistant", "You have 1 t"),
    ]
    assert page["items"][0]["tool_calls"] is None
    assert page["items"][1]["tool_calls"] == first["tool_calls"]
    assert page["items"][1]["reply_to_id"] == page["items"][0]["id"]
    assert page["next_cursor"] is None


def test_list_messages_pages_back_to_older_ones(
    api: ApiClient, send_chat: Send, alice: str, token_for: Callable[..., str]
) -> None:
    conversation_id = send_chat(alice, "turn 0").json()["conversation_id"]
    for n in range(1, 4):
        send_chat(alice, f"turn {n}", conversation_id)
    url = f"/api/{alice}/conversations/{conversation_id}/messages"
    newest = api.get(url, token=token_for(alice), params={"limit": 3}).json()
    older = api.get(
        url, token=token_for(alice), params={"limit": 3, "cursor": newest["next_cursor"]}
    ).json()
    oldest = api.get(
        url, token=token_for(alice), params={"limit": 3, "cursor": older["next_cursor"]}
    ).json()
    everything = oldest["items"] + older["items"] + newest["items"]
    assert [m["content"] for m in everything if m["role"] == "user"] == [
        "turn 0",
        "turn 1",
        "turn 2",
        "turn 3",
    ]
    assert len(everything) == 8
    assert oldest["next_cursor"] is None


def test_list_messages_of_foreign_conversation_is_404(
    api: ApiClient, send_chat: Send, alice: str, bob: str, token_for: Callable[..., str]
) -> None:
    conversation_id = send_chat(alice, "add secret").json()["conversation_id"]
    foreign = api.get(f"/api/{bob}/conversations/{conversation_id}/messages", token=token_for(bob))
    missing = api.get(f"/api/{bob}/conversations/987654/messages", token=token_for(bob))
    assert foreign.status == missing.status == 404
    assert foreign.body == missing.body


@pytest.mark.parametrize(
    ("conversation", "params"),
    [
        ("abc", {}),
        ("0", {}),
        (str(2**63), {}),
        ("1", {"limit": 201}),
        ("1", {"cursor": "%%%"}),
        ("1", {"cursor": "x.1"}),
        ("1", {"cursor": "0.0"}),
        (str(2**53), {}),
    ],
)
def test_list_messages_bad_input_is_422(
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    conversation: str,
    params: dict[str, object],
) -> None:
    response = api.get(
        f"/api/{alice}/conversations/{conversation}/messages",
        token=token_for(alice),
        params=params,
    )
    assert response.status == 422


def test_list_messages_default_page_is_50_and_the_largest_limit_200_is_accepted(
    api: ApiClient, send_chat: Send, alice: str, token_for: Callable[..., str], direct_url: str
) -> None:
    conversation_id = send_chat(alice, "hello").json()["conversation_id"]
    with psycopg.connect(direct_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO message (conversation_id, user_id, role, content)"
            " SELECT %s, %s, 'user', 'filler ' || n FROM generate_series(1, 199) AS n",
            (conversation_id, alice),
        )
    url, token = f"/api/{alice}/conversations/{conversation_id}/messages", token_for(alice)
    default = api.get(url, token=token)
    largest = api.get(url, token=token, params={"limit": 200})
    assert (default.status, largest.status) == (200, 200)
    assert [len(default.json()["items"]), len(largest.json()["items"])] == [50, 200]
    assert default.json()["items"][-1]["content"] == "filler 199"  # the newest page
    assert default.json()["next_cursor"] is not None
    assert largest.json()["next_cursor"] is not None  # 201 of them


def test_list_messages_page_stops_at_its_byte_budget_and_pages_on(
    api: ApiClient, send_chat: Send, alice: str, token_for: Callable[..., str], direct_url: str
) -> None:
    # 200 large replies (listings of 50 long tasks, a model's long text) once made a page past
    # Lambda's 6 MB response: that conversation's messages could not be read at any limit.
    conversation_id = send_chat(alice, "turn 0").json()["conversation_id"]
    for n in range(1, 4):
        send_chat(alice, f"turn {n}", conversation_id)
    with psycopg.connect(direct_url) as connection:
        # Replies of 0.4 MB each (a 2-byte character: the budget counts bytes, not characters),
        # and one of 1.5 MB, larger than a page on its own.
        connection.execute(
            "UPDATE message SET content = repeat('é', 200000) WHERE role = 'assistant'"
        )
        connection.execute(
            "UPDATE message SET content = repeat('x', 1500000)"
            " WHERE role = 'assistant' AND content LIKE 'é%'"
            " AND reply_to_id = (SELECT min(id) FROM message WHERE role = 'user')"
        )
    url = f"/api/{alice}/conversations/{conversation_id}/messages"
    pages, cursor = [], None
    while True:
        params: dict[str, object] = {"limit": 200}
        if cursor is not None:
            params["cursor"] = cursor
        response = api.get(url, token=token_for(alice), params=params)
        assert response.status == 200, response.body
        pages.append(response.json())
        cursor = pages[-1]["next_cursor"]
        assert len(response.body) <= 1_000_000 or len(pages[-1]["items"]) == 1
        if cursor is None:
            break
    # Newest first: two 0.4 MB replies and their questions; the third reply and its question;
    # the 1.5 MB reply alone; the first question.
    assert [len(page["items"]) for page in pages] == [4, 2, 1, 1]
    everything = [m for page in reversed(pages) for m in page["items"]]
    assert [m["content"] for m in everything if m["role"] == "user"] == [
        f"turn {n}" for n in range(4)
    ]
    assert len(everything) == 8
    assert len({m["id"] for m in everything}) == 8


def test_list_messages_page_just_past_its_byte_budget_with_its_envelope_stops_and_ends_right(
    api: ApiClient, send_chat: Send, alice: str, token_for: Callable[..., str], direct_url: str
) -> None:
    # The messages' own JSON exactly at the budget: the page's, with its brackets and commas,
    # passes it. The page stops before the last message, and the walk ends without an empty page.
    conversation_id = send_chat(alice, "hello").json()["conversation_id"]
    url, token = f"/api/{alice}/conversations/{conversation_id}/messages", token_for(alice)
    items = api.get(url, token=token).json()["items"]
    sizes = [len(json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode()) for m in items]
    grow = 1_000_000 - sum(sizes)
    with psycopg.connect(direct_url) as connection:
        connection.execute(
            "UPDATE message SET content = content || repeat('x', %s) WHERE role = 'assistant'",
            (grow,),
        )
    pages, params = [], {"limit": 50}
    while True:
        response = api.get(url, token=token, params=params)
        assert response.status == 200, response.body
        page = response.json()
        pages.append(page["items"])
        assert len(response.body) <= 1_000_000 or len(page["items"]) == 1
        if page["next_cursor"] is None:
            break
        params = {"limit": 50, "cursor": page["next_cursor"]}
    assert [[m["role"] for m in page] for page in pages] == [["assistant"], ["user"]]
