"""events/: one real HTTP API event per function, up to date with template.yaml, and each one
served by its function's real handler (the same files `sam local invoke -e` takes)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devserver.sample_events import EXPECTED_STATUS, render, sample_events
from devserver.server import Gateway
from devserver.template import read_routes
from tests.api_client import ApiClient

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


ON_DISK = sorted(path.name for path in EVENTS.glob("*.json") if path.name != "env.json")


def test_events_one_up_to_date_file_per_function() -> None:
    expected = sample_events(ROOT / "template.yaml")
    on_disk = {path.name for path in EVENTS.glob("*.json")} - {"env.json"}
    assert on_disk == set(expected), "run `make events`"
    for name, event in expected.items():
        assert (EVENTS / name).read_text(encoding="utf-8") == render(event), name
    functions = {route.function for route in read_routes(ROOT / "template.yaml")}
    assert len(functions) == len(expected)


def test_events_each_file_has_an_expected_status() -> None:
    assert sorted(EXPECTED_STATUS) == ON_DISK, "give each event in events/ its expected status"


@pytest.mark.parametrize("name", ON_DISK)
def test_events_each_file_is_served_by_its_handler(
    name: str,
    api: ApiClient,
    gateway: Gateway,
    token_for: Callable[..., str],
    make_task: Callable[..., dict[str, object]],
    send_chat: Callable[..., Any],
) -> None:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    parameters = event.get("pathParameters", {})
    if "user_id" in parameters:
        # The file's token is signed with the local development secret; the suite has its own.
        event["headers"]["authorization"] = f"Bearer {token_for(parameters['user_id'])}"
    if "task_id" in parameters:
        task_id = str(make_task(parameters["user_id"])["id"])
        old = f"/tasks/{parameters['task_id']}"
        event["rawPath"] = event["rawPath"].replace(old, f"/tasks/{task_id}")
        event["requestContext"]["http"]["path"] = event["rawPath"]
        parameters["task_id"] = task_id
    if "conversation_id" in parameters:
        conversation_id = str(send_chat(parameters["user_id"], "hello").json()["conversation_id"])
        old = f"/conversations/{parameters['conversation_id']}"
        event["rawPath"] = event["rawPath"].replace(old, f"/conversations/{conversation_id}")
        event["requestContext"]["http"]["path"] = event["rawPath"]
        parameters["conversation_id"] = conversation_id
    match = gateway.match(event["requestContext"]["http"]["method"], event["rawPath"])
    assert match is not None
    assert match.route.route_key == event["routeKey"]

    response = gateway.invoke(match.route, event)

    assert response["statusCode"] == EXPECTED_STATUS[name], response.get("body")
