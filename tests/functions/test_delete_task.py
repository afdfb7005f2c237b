from collections.abc import Callable

from tests.api_client import ApiClient
from tests.functions.conftest import TwoUsers


def test_delete_task_is_204_and_gone(
    api: ApiClient, alice: str, token_for: Callable[..., str], make_task: Callable[..., dict]
) -> None:
    task = make_task(alice)
    url = f"/api/{alice}/tasks/{task['id']}"
    response = api.delete(url, token=token_for(alice))
    assert response.status == 204
    assert response.function == "DeleteTaskFunction"
    assert response.body == b""
    assert api.get(url, token=token_for(alice)).status == 404


def test_delete_task_twice_is_404(
    api: ApiClient, alice: str, token_for: Callable[..., str], make_task: Callable[..., dict]
) -> None:
    task = make_task(alice)
    url = f"/api/{alice}/tasks/{task['id']}"
    assert api.delete(url, token=token_for(alice)).status == 204
    assert api.delete(url, token=token_for(alice)).status == 404


def test_delete_task_of_another_user_is_404_and_kept(two_users: TwoUsers) -> None:
    task = two_users.alices_task()
    assert two_users.bob_sends("DELETE", task["id"]).status == 404
    assert two_users.alice_reads(task["id"]).status == 200


def test_delete_task_without_token_is_401_and_kept(
    api: ApiClient, alice: str, token_for: Callable[..., str], make_task: Callable[..., dict]
) -> None:
    task = make_task(alice)
    assert api.delete(f"/api/{alice}/tasks/{task['id']}").status == 401
    assert api.get(f"/api/{alice}/tasks/{task['id']}", token=token_for(alice)).status == 200
