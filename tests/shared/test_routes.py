"""``Routes``: a function's app builds only the route it serves, with the module's tags and
shared error responses, and a wrong route name fails at import, not at the first request."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.routing import APIRoute

from tests.api_client import ApiClient
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
    async def things() -> list[str]:
        return ["thing"]

    @routes.post("/others")
    async def others() -> None: ...

    # Declaring analyses nothing and hands the function back untouched; build() makes one route.
    assert built == []
    assert asyncio.run(things()) == ["thing"]
    assert [route.path for route in routes.build("things").routes] == ["/things"]
    assert built == ["/things"]


def test_routes_unknown_name_fails_at_import() -> None:
    with pytest.raises(LookupError, match="no route named 'get_tsak'"):
        create_app(task_router, route="get_tsak")


def test_routes_declared_twice_is_refused() -> None:
    routes = Routes(tags=["t"], responses={})

    async def thing() -> None: ...

    routes.get("/a")(thing)
    with pytest.raises(ValueError, match="declared twice"):
        routes.post("/b")(thing)


def test_routes_sync_endpoint_is_refused() -> None:
    routes = Routes(tags=["t"], responses={})

    def blocking() -> None: ...

    with pytest.raises(TypeError, match="must be declared with async def"):
        routes.get("/a")(blocking)


@pytest.fixture
def threads_started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    started: list[str] = []
    start = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    return started


def test_routes_warm_requests_start_no_thread(
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    make_task: Callable[..., dict[str, object]],
    threads_started: list[str],
) -> None:
    # Under Mangum every invocation is an event loop's root task, and AnyIO stops its worker
    # threads with the root task: a sync route or dependency meant a new thread per request.
    token = token_for(alice)
    task = make_task(alice)

    def one_of_each(doomed: object) -> list[tuple[str, str, dict[str, str] | None, int]]:
        return [
            ("GET", f"/api/{alice}/tasks", None, 200),
            ("GET", f"/api/{alice}/tasks/{task['id']}", None, 200),
            ("PUT", f"/api/{alice}/tasks/{task['id']}", {"title": "renamed"}, 200),
            ("PATCH", f"/api/{alice}/tasks/{task['id']}/complete", None, 200),
            ("POST", f"/api/{alice}/tasks", {"title": "another"}, 201),
            ("DELETE", f"/api/{alice}/tasks/{doomed}", None, 204),
            ("POST", f"/api/{alice}/chat", {"message": "hmm"}, 200),
            ("GET", f"/api/{alice}/conversations", None, 200),
            ("GET", "/health", None, 200),
        ]

    for _round in ("imports each function", "warm"):
        requests = one_of_each(make_task(alice)["id"])
        threads_started.clear()
        for method, path, body, status in requests:
            assert api.request(method, path, token=token, json_body=body).status == status
    assert threads_started == []
