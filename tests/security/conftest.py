"""Fixtures of the security suites: a user with data on every kind of path, and requests to any
route of template.yaml on that user's paths."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from devserver.template import Route
from tests.api_client import ApiClient, Response
from tests.security.routes import SendTo, filled_path


@pytest.fixture
def seeded(
    alice: str, make_task: Callable[..., dict[str, Any]], send_chat: Callable[..., Response]
) -> dict[str, str]:
    """Alice with a task and a conversation: a value for every path parameter."""
    task = make_task(alice, "keep me")
    conversation = send_chat(alice, "add keep me too").json()["conversation_id"]
    return {"user_id": alice, "task_id": str(task["id"]), "conversation_id": str(conversation)}


@pytest.fixture
def send_to(api: ApiClient, seeded: dict[str, str], token_for: Callable[..., str]) -> SendTo:
    """Send a request to ``route``: its path parameters are ``seeded``'s unless ``values``
    replaces them, its token is for exactly the user the path names (so only the path's own
    checks stand), ``query`` is appended as is; the rest goes to ``ApiClient.request``."""

    def send(
        route: Route,
        values: Mapping[str, str] | None = None,
        *,
        query: str | None = None,
        **kwargs: Any,
    ) -> Response:
        filled = {**seeded, **(values or {})}
        path = filled_path(route.path, filled)
        if query is not None:
            path = f"{path}?{query}"
        return api.request(route.method, path, token=token_for(filled["user_id"]), **kwargs)

    return send
