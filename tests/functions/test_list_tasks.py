from collections.abc import Callable

import psycopg
import pytest

from tests.api_client import ApiClient


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
