"""``Routes``: a function's app builds only the route it serves, with the module's tags and
shared error responses, and a wrong route name fails at import, not at the first request."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from todo_core.api import Routes, create_app
from todo_core.chat.history_routes import router as history_router
from todo_core.tasks.routes import router as task_router


def test_routes_app_serves_only_its_own_route() -> None:
    app = create_app(task_router, route="get_task")
    paths = app.openapi()["paths"]
    assert list(paths) == ["/api/{user_id}/tasks/{task_id}"]
    assert list(paths["/api/{user_id}/tasks/{task_id}"]) == ["get"]


def test_routes_keep_the_module_tags_and_shared_responses() -> None:
    operation = create_app(history_router, route="list_conversations").openapi()["paths"][
        "/api/{user_id}/conversations"
    ]["get"]
    assert operation["tags"] == ["conversations"]
    assert {"401", "403", "422", "503"} <= set(operation["responses"])


def test_routes_build_nothing_until_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    original = APIRoute.__init__

    def counting(self: APIRoute, path: str, *args: Any, **kwargs: Any) -> None:
        built.append(path)
        original(self, path, *args, **kwargs)

    monkeypatch.setattr(APIRoute, "__init__", counting)
    routes = Routes(tags=["t"], responses={})

    @routes.get("/things")
    def things() -> list[str]:
        return ["thing"]

    @routes.post("/others")
    def others() -> None: ...

    # Declaring analyses nothing and hands the function back untouched; build() makes one route.
    assert built == []
    assert things() == ["thing"]
    assert [route.path for route in routes.build("things").routes] == ["/things"]
    assert built == ["/things"]


def test_routes_unknown_name_fails_at_import() -> None:
    with pytest.raises(LookupError, match="no route named 'get_tsak'"):
        create_app(task_router, route="get_tsak")


def test_routes_declared_twice_is_refused() -> None:
    routes = Routes(tags=["t"], responses={})

    def thing() -> None: ...

    routes.get("/a")(thing)
    with pytest.raises(ValueError, match="declared twice"):
        routes.post("/b")(thing)
