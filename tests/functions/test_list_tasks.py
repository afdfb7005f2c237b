from collections.abc import Callable

import psycopg
import pytest

from tests.api_client import ApiClient
from tests.conftest import new_user_id
from tests.functions.conftest import next_page_query, task_pages


def _create(api: ApiClient, user: str, token: str, title: str) -> int:
    response = api.post(f"/api/{user}/tasks", token=token, json_body={"title": title})
    assert response.status == 201
    task_id: int = response.json()["id"]
    return task_id


def test_list_tasks_newest_first(api: ApiClient, alice: str, token_for: Callable[..., str]) -> None:
    token = token_for(alice)
    ids = [_create(api, alice, token, f"task {n}") for n in range(3)]
    response = api.get(f"/api/{alice}/tasks", token=token)
    assert response.status == 200
    assert response.function == "ListTasksFunction"
    assert [task["id"] for task in response.json()] == list(reversed(ids))


def test_list_tasks_filters_by_status(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    token = token_for(alice)
    done, todo = _create(api, alice, token, "done"), _create(api, alice, token, "todo")
    assert api.patch(f"/api/{alice}/tasks/{done}/complete", token=token).status == 200

    def ids(status: str) -> list[int]:
        response = api.get(f"/api/{alice}/tasks", token=token, params={"status": status})
        assert response.status == 200
        return [task["id"] for task in response.json()]

    assert ids("completed") == [done]
    assert ids("pending") == [todo]
    assert ids("all") == [todo, done]


def test_list_tasks_empty_for_new_user(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    response = api.get(f"/api/{alice}/tasks", token=token_for(alice))
    assert response.status == 200
    assert response.json() == []


def test_list_tasks_limit(api: ApiClient, alice: str, token_for: Callable[..., str]) -> None:
    token = token_for(alice)
    ids = [_create(api, alice, token, f"t{n}") for n in range(3)]
    response = api.get(f"/api/{alice}/tasks", token=token, params={"limit": 2})
    assert [task["id"] for task in response.json()] == [ids[2], ids[1]]


@pytest.mark.parametrize(
    "query", [{"status": "done"}, {"limit": 0}, {"limit": 501}, {"limit": "many"}]
)
def test_list_tasks_bad_query_is_422(
    api: ApiClient, alice: str, token_for: Callable[..., str], query: dict[str, object]
) -> None:
    response = api.get(f"/api/{alice}/tasks", token=token_for(alice), params=query)
    assert response.status == 422
    assert response.json()["detail"][0]["loc"][0] == "query"


def test_list_tasks_shows_only_own_tasks(
    api: ApiClient, alice: str, bob: str, token_for: Callable[..., str]
) -> None:
    _create(api, alice, token_for(alice), "alice's")
    _create(api, bob, token_for(bob), "bob's")
    titles = [task["title"] for task in api.get(f"/api/{bob}/tasks", token=token_for(bob)).json()]
    assert titles == ["bob's"]


def test_list_tasks_other_users_path_is_403(
    api: ApiClient, alice: str, bob: str, token_for: Callable[..., str]
) -> None:
    _create(api, alice, token_for(alice), "private")
    response = api.get(f"/api/{alice}/tasks", token=token_for(bob))
    assert response.status == 403
    assert "private" not in response.body.decode()


def test_list_tasks_default_page_is_100_and_the_largest_limit_500_is_accepted(
    api: ApiClient, alice: str, token_for: Callable[..., str], direct_url: str
) -> None:
    with psycopg.connect(direct_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO task (user_id, title, completed, created_at, updated_at)"
            " SELECT %s, 'task ' || n, false, now(), now() FROM generate_series(1, 501) AS n",
            (alice,),
        )
    token = token_for(alice)
    default = api.get(f"/api/{alice}/tasks", token=token)
    largest = api.get(f"/api/{alice}/tasks", token=token, params={"limit": 500})
    assert (default.status, largest.status) == (200, 200)
    assert [len(default.json()), len(largest.json())] == [100, 500]
    assert default.json()[0]["title"] == "task 501"  # newest first


def test_list_tasks_pages_through_every_task_by_link_next(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    token = token_for(alice)
    ids = [_create(api, alice, token, f"t{n}") for n in range(7)]
    first = api.get(f"/api/{alice}/tasks", token=token, params={"limit": 3})
    assert next_page_query(first) == {"status": "all", "limit": "3", "cursor": str(ids[4])}
    pages = task_pages(api, alice, token, {"limit": 3})
    assert pages == [ids[6:3:-1], ids[3:0:-1], ids[:1]]


def test_list_tasks_last_page_has_no_link(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    token = token_for(alice)
    ids = [_create(api, alice, token, f"t{n}") for n in range(3)]
    # Exactly a page's worth: no empty page after it.
    assert task_pages(api, alice, token, {"limit": 3}) == [ids[::-1]]
    assert task_pages(api, alice, token, {}) == [ids[::-1]]
    nobody = new_user_id()
    assert task_pages(api, nobody, token_for(nobody), {}) == [[]]


def test_list_tasks_pages_keep_the_status_filter(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    token = token_for(alice)
    ids = [_create(api, alice, token, f"t{n}") for n in range(6)]
    for done in ids[::2]:
        assert api.patch(f"/api/{alice}/tasks/{done}/complete", token=token).status == 200
    pending = ids[1::2][::-1]
    completed = ids[::2][::-1]
    assert task_pages(api, alice, token, {"status": "pending", "limit": 2}) == [
        pending[:2],
        pending[2:],
    ]
    assert task_pages(api, alice, token, {"status": "completed", "limit": 2}) == [
        completed[:2],
        completed[2:],
    ]


def test_list_tasks_pages_neither_skip_nor_repeat_when_tasks_change_between_them(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    token = token_for(alice)
    ids = [_create(api, alice, token, f"t{n}") for n in range(6)]
    first = api.get(f"/api/{alice}/tasks", token=token, params={"limit": 2})
    assert [task["id"] for task in first.json()] == [ids[5], ids[4]]
    newer = _create(api, alice, token, "added after the first page")
    assert api.delete(f"/api/{alice}/tasks/{ids[5]}", token=token).status == 204  # on page 1
    assert api.delete(f"/api/{alice}/tasks/{ids[2]}", token=token).status == 204  # ahead
    query = next_page_query(first)
    assert query is not None
    rest = task_pages(api, alice, token, dict(query))
    assert rest == [[ids[3], ids[1]], [ids[0]]]
    assert newer not in [task_id for page in rest for task_id in page]


def test_list_tasks_cursor_reaches_only_the_callers_tasks(
    api: ApiClient, alice: str, bob: str, token_for: Callable[..., str]
) -> None:
    alices = [_create(api, alice, token_for(alice), f"a{n}") for n in range(3)]
    bobs = [_create(api, bob, token_for(bob), f"b{n}") for n in range(3)]
    # A cursor is an id: one from another user's list (or made up) pages only the caller's.
    response = api.get(
        f"/api/{bob}/tasks", token=token_for(bob), params={"cursor": str(alices[-1] + 100)}
    )
    assert [task["id"] for task in response.json()] == bobs[::-1]


@pytest.mark.parametrize(
    "cursor", ["", "0", "-1", "01", "abc", "1.2", "1 ", "\uff11", "1" * 19, "1e3", "0x10"]
)
def test_list_tasks_malformed_cursor_is_422(
    api: ApiClient, alice: str, token_for: Callable[..., str], cursor: str
) -> None:
    response = api.get(f"/api/{alice}/tasks", token=token_for(alice), params={"cursor": cursor})
    assert response.status == 422
    assert response.json()["detail"][0]["loc"] == ["query", "cursor"]
