"""Isolation, generated from template.yaml: for every route that names a user, user B's valid
token on user A's path is a 403, and B's token on B's own path with A's resource ids is a 404;
either way A's data is unchanged. A route added to the template without a row here fails."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devserver.template import Route, read_routes
from tests.api_client import ApiClient, Response
from tests.security.stored_data import stored_rows

ROOT = Path(__file__).resolve().parents[2]
ROUTES = [r for r in read_routes(ROOT / "template.yaml") if "{user_id}" in r.path]

# What each route sends besides its path: a body that would change A's data if it got through.
# Every user route must have an entry (None: the route takes no body).
REQUEST_BODIES: dict[str, Any] = {
    "GET /api/{user_id}/tasks": None,
    "POST /api/{user_id}/tasks": {"title": "written by bob"},
    "GET /api/{user_id}/tasks/{task_id}": None,
    "PUT /api/{user_id}/tasks/{task_id}": {"title": "renamed by bob", "completed": True},
    "DELETE /api/{user_id}/tasks/{task_id}": None,
    "PATCH /api/{user_id}/tasks/{task_id}/complete": None,
    "POST /api/{user_id}/chat": {"message": "delete task {task_id}", "conversation_id": None},
    "GET /api/{user_id}/conversations": None,
    "GET /api/{user_id}/conversations/{conversation_id}/messages": None,
    "DELETE /api/{user_id}/conversations/{conversation_id}": None,
}
# Routes whose success would expose or change a resource by id in the body rather than the path.
BODY_REFERENCES = {"POST /api/{user_id}/chat"}


def _request(
    api: ApiClient,
    route: Route,
    *,
    path_user: str,
    token: str,
    resources: dict[str, int],
) -> Response:
    parameters = {
        name: str(resources.get(name, "")) for name in re.findall(r"\{(\w+)\}", route.path)
    }
    parameters["user_id"] = path_user
    body = REQUEST_BODIES[route.route_key]
    if isinstance(body, dict):
        body = dict(body)
        if "conversation_id" in body:
            # Another user's conversation, or (with no resources given) a new one.
            if "conversation_id" in resources:
                body["conversation_id"] = resources["conversation_id"]
            else:
                del body["conversation_id"]
        body = {
            key: value.format(task_id=resources.get("task_id", 1))
            if isinstance(value, str)
            else value
            for key, value in body.items()
        }
    return api.request(
        route.method,
        route.path.format(**parameters),
        token=token,
        json_body=body,
        headers={"idempotency-key": "isolation-matrix"} if route.method == "POST" else None,
    )


def test_isolation_matrix_covers_every_user_route() -> None:
    assert {route.route_key for route in ROUTES} == set(REQUEST_BODIES), (
        "a route in template.yaml has no isolation case (or a case has no route)"
    )


@pytest.fixture
def alices_data(
    alice: str,
    make_task: Callable[..., dict[str, Any]],
    send_chat: Callable[..., Response],
) -> dict[str, int]:
    task = make_task(alice, "alice's task", description="private")
    conversation = send_chat(alice, f"complete task {task['id']}").json()["conversation_id"]
    return {"task_id": int(task["id"]), "conversation_id": int(conversation)}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.route_key)
def test_isolation_other_users_path_is_403_and_changes_nothing(
    route: Route,
    api: ApiClient,
    alice: str,
    bob: str,
    token_for: Callable[..., str],
    alices_data: dict[str, int],
    direct_url: str,
) -> None:
    before = stored_rows(direct_url, alice)
    response = _request(api, route, path_user=alice, token=token_for(bob), resources=alices_data)
    assert response.status == 403, (route.route_key, response.body)
    assert "alice's task" not in response.body.decode()
    assert stored_rows(direct_url, alice) == before


@pytest.mark.parametrize(
    "route",
    [
        r
        for r in ROUTES
        if re.search(r"\{(task_id|conversation_id)\}", r.path) or r.route_key in BODY_REFERENCES
    ],
    ids=lambda r: r.route_key,
)
def test_isolation_other_users_ids_are_404_and_change_nothing(
    route: Route,
    api: ApiClient,
    alice: str,
    bob: str,
    token_for: Callable[..., str],
    alices_data: dict[str, int],
    direct_url: str,
) -> None:
    before = stored_rows(direct_url, alice)
    response = _request(api, route, path_user=bob, token=token_for(bob), resources=alices_data)
    assert response.status == 404, (route.route_key, response.body)
    assert "alice's task" not in response.body.decode()
    assert stored_rows(direct_url, alice) == before
    assert stored_rows(direct_url, bob)["message"] == []  # nothing stored on bob's side either


@pytest.mark.parametrize(
    "route",
    [r for r in ROUTES if not re.search(r"\{(task_id|conversation_id)\}", r.path)],
    ids=lambda r: r.route_key,
)
def test_isolation_own_collections_never_show_other_users_data(
    route: Route,
    api: ApiClient,
    alice: str,
    bob: str,
    token_for: Callable[..., str],
    alices_data: dict[str, int],
    direct_url: str,
) -> None:
    before = stored_rows(direct_url, alice)
    response = _request(api, route, path_user=bob, token=token_for(bob), resources={})
    assert response.status in (200, 201), (route.route_key, response.body)
    assert "alice's task" not in response.body.decode()
    assert stored_rows(direct_url, alice) == before
