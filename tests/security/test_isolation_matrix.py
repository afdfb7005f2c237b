"""Isolation, generated from template.yaml: for every route that names a user, user B's valid
token on user A's path is a 403, and B's token on B's own path with A's resource ids is a 404;
either way A's data is unchanged. A route added to the template without a row here fails."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from devserver.template import Route
from tests.api_client import ApiClient, Response
from tests.security.routes import TEMPLATE_ROUTES
from tests.security.stored_data import stored_rows

ROUTES = [r for r in TEMPLATE_ROUTES if "{user_id}" in r.path]

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


BobsRequest = Callable[..., Response]


@pytest.fixture
def bobs_request(
    api: ApiClient, alice: str, bob: str, token_for: Callable[..., str], direct_url: str
) -> BobsRequest:
    """Send ``route`` with bob's valid token (on ``path_user``'s path, with ``resources``' ids)
    and check its status is one of ``statuses``, that it shows nothing of alice's task, and that
    alice's stored data is unchanged."""

    def send(
        route: Route, *, path_user: str, resources: dict[str, int], statuses: tuple[int, ...]
    ) -> Response:
        before = stored_rows(direct_url, alice)
        response = _request(
            api, route, path_user=path_user, token=token_for(bob), resources=resources
        )
        assert response.status in statuses, (route.route_key, response.body)
        assert "alice's task" not in response.body.decode()
        assert stored_rows(direct_url, alice) == before
        return response

    return send


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.route_key)
def test_isolation_other_users_path_is_403_and_changes_nothing(
    route: Route, alice: str, alices_data: dict[str, int], bobs_request: BobsRequest
) -> None:
    bobs_request(route, path_user=alice, resources=alices_data, statuses=(403,))


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
    bob: str,
    alices_data: dict[str, int],
    bobs_request: BobsRequest,
    direct_url: str,
) -> None:
    bobs_request(route, path_user=bob, resources=alices_data, statuses=(404,))
    assert stored_rows(direct_url, bob)["message"] == []  # nothing stored on bob's side either


@pytest.mark.parametrize(
    "route",
    [r for r in ROUTES if not re.search(r"\{(task_id|conversation_id)\}", r.path)],
    ids=lambda r: r.route_key,
)
def test_isolation_own_collections_never_show_other_users_data(
    route: Route, bob: str, alices_data: dict[str, int], bobs_request: BobsRequest
) -> None:
    bobs_request(route, path_user=bob, resources={}, statuses=(200, 201))
