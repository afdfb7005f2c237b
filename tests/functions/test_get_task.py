from collections.abc import Callable

import pytest

from tests.api_client import ApiClient
from tests.functions.conftest import TwoUsers


def test_get_task_returns_it(
    api: ApiClient, alice: str, token_for: Callable[..., str], make_task: Callable[..., dict]
) -> None:
    task = make_task(alice, "read me", description="details")
    response = api.get(f"/api/{alice}/tasks/{task['id']}", token=token_for(alice))
    assert response.status == 200
    assert response.function == "GetTaskFunction"
    assert response.json() == task


def test_get_task_unknown_id_is_404(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    response = api.get(f"/api/{alice}/tasks/999999", token=token_for(alice))
    assert response.status == 404
    assert response.json() == {"detail": "Task not found"}


def test_get_task_of_another_user_is_404_like_a_missing_one(two_users: TwoUsers) -> None:
    task = two_users.alices_task("secret")
    foreign = two_users.bob_sends("GET", task["id"])
    missing = two_users.bob_sends("GET", 999999)
    assert (foreign.status, foreign.body) == (missing.status, missing.body)


@pytest.mark.parametrize(
    "task_id", ["abc", "1.5", "0", "-1", str(2**63), "99999999999999999999999", "1e3"]
)
def test_get_task_bad_id_is_422(
    api: ApiClient, alice: str, token_for: Callable[..., str], task_id: str
) -> None:
    response = api.get(f"/api/{alice}/tasks/{task_id}", token=token_for(alice))
    assert response.status == 422
    assert response.json()["detail"][0]["loc"] == ["path", "task_id"]


def test_get_task_largest_id_is_404_and_one_more_is_422(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    largest = 2**53 - 1  # JavaScript's largest exact integer
    assert api.get(f"/api/{alice}/tasks/{largest}", token=token_for(alice)).status == 404
    assert api.get(f"/api/{alice}/tasks/{largest + 1}", token=token_for(alice)).status == 422
