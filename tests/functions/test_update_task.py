from collections.abc import Callable

import pytest

from tests.api_client import ApiClient
from tests.functions.conftest import TwoUsers
from tests.functions.test_create_task import TITLE_LENGTH_ERRORS


def test_update_task_changes_only_sent_fields(
    api: ApiClient, alice: str, token_for: Callable[..., str], make_task: Callable[..., dict]
) -> None:
    task = make_task(alice, "old", description="keep me")
    response = api.put(
        f"/api/{alice}/tasks/{task['id']}", token=token_for(alice), json_body={"title": "new"}
    )
    assert response.status == 200
    assert response.function == "UpdateTaskFunction"
    updated = response.json()
    assert updated["title"] == "new"
    assert updated["description"] == "keep me"
    assert updated["completed"] is False
    assert updated["updated_at"] > task["updated_at"]
    assert updated["created_at"] == task["created_at"]


def test_update_task_sets_completed_and_clears_description(
    api: ApiClient, alice: str, token_for: Callable[..., str], make_task: Callable[..., dict]
) -> None:
    task = make_task(alice, "t", description="d")
    response = api.put(
        f"/api/{alice}/tasks/{task['id']}",
        token=token_for(alice),
        json_body={"completed": True, "description": None},
    )
    assert response.status == 200
    assert response.json()["completed"] is True
    assert response.json()["description"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"title": None},
        {"completed": None},
        {"completed": "yes"},
        {"completed": 1},
        {"title": ""},
        {"title": "x" * 201},
        {"unknown": 1},
        ["title"],
        "title",
    ],
)
def test_update_task_invalid_body_is_422_and_changes_nothing(
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    make_task: Callable[..., dict],
    body: object,
) -> None:
    task = make_task(alice, "unchanged")
    url = f"/api/{alice}/tasks/{task['id']}"
    response = api.put(url, token=token_for(alice), json_body=body)
    assert response.status == 422
    assert api.get(url, token=token_for(alice)).json() == task


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": 5}, "title"),
        ({"title": "a\u0000b"}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"completed": "yes"}, "completed"),
        ({"completed": 1}, "completed"),
    ],
)
def test_update_task_invalid_field_is_one_problem_at_that_field(
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    make_task: Callable[..., dict],
    body: dict[str, object],
    field: str,
) -> None:
    """A bad title or completed is one problem located at the field, as for any other field: not
    one per member of the model's internal union, with the validator chain's repr (and a memory
    address) in its loc and a second problem that asks for the null the field refuses."""
    task = make_task(alice, "unchanged")
    response = api.put(f"/api/{alice}/tasks/{task['id']}", token=token_for(alice), json_body=body)
    assert response.status == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", field], problem


def test_update_task_of_another_user_is_404_and_unchanged(two_users: TwoUsers) -> None:
    task = two_users.alices_task("mine")
    response = two_users.bob_sends("PUT", task["id"], json_body={"title": "stolen"})
    assert response.status == 404
    own = two_users.alice_reads(task["id"]).json()
    assert own["title"] == "mine"


def test_update_task_unknown_id_is_404(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    response = api.put(f"/api/{alice}/tasks/42", token=token_for(alice), json_body={"title": "x"})
    assert response.status == 404


@pytest.mark.parametrize(("title", "kind", "message"), TITLE_LENGTH_ERRORS)
def test_update_task_title_length_errors_count_characters(
    api: ApiClient, alice: str, token_for: Callable[..., str], title: str, kind: str, message: str
) -> None:
    token = token_for(alice)
    created = api.post(f"/api/{alice}/tasks", token=token, json_body={"title": "t"})
    path = f"/api/{alice}/tasks/{created.json()['id']}"
    response = api.put(path, token=token, json_body={"title": title})
    assert response.status == 422, response.body
    [problem] = response.json()["detail"]
    assert (problem["type"], problem["msg"], problem["loc"]) == (kind, message, ["body", "title"])
    assert api.get(path, token=token).json()["title"] == "t"
