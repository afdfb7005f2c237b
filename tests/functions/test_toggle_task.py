from collections.abc import Callable

from tests.api_client import ApiClient
from tests.functions.conftest import TwoUsers


def test_toggle_task_flips_completion_both_ways(
    api: ApiClient, alice: str, token_for: Callable[..., str], make_task: Callable[..., dict]
) -> None:
    task = make_task(alice)
    url = f"/api/{alice}/tasks/{task['id']}/complete"
    first = api.patch(url, token=token_for(alice))
    assert first.status == 200
    assert first.function == "ToggleTaskFunction"
    assert first.json()["completed"] is True
    second = api.patch(url, token=token_for(alice))
    assert second.json()["completed"] is False


def test_toggle_task_of_another_user_is_404_and_unchanged(two_users: TwoUsers) -> None:
    task = two_users.alices_task()
    assert two_users.bob_sends("PATCH", task["id"], "/complete").status == 404
    own = two_users.alice_reads(task["id"]).json()
    assert own["completed"] is False


def test_toggle_task_unknown_id_is_404(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    assert api.patch(f"/api/{alice}/tasks/7/complete", token=token_for(alice)).status == 404


def test_toggle_task_ignores_a_body(
    api: ApiClient, alice: str, token_for: Callable[..., str], make_task: Callable[..., dict]
) -> None:
    task = make_task(alice)
    response = api.patch(
        f"/api/{alice}/tasks/{task['id']}/complete",
        token=token_for(alice),
        json_body={"completed": False},
    )
    assert response.status == 200
    assert response.json()["completed"] is True
