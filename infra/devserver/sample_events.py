"""Writes ``events/<function>.json``: one real HTTP API (payload 2.0) event per function of
``template.yaml``, for ``sam local invoke <Function> -e events/<function>.json``.

python -m devserver.sample_events [--check]

The events are deterministic (fixed request ids and times) so that the files change only when
this script or the template does; ``--check`` fails if a file is missing or out of date. Their
bearer token is signed with the public local development secret (the one ``events/env.json``
gives the functions under ``sam local invoke``), so it is worthless anywhere else; the test suite
swaps in a token of its own.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import jwt

from devserver.events import http_api_event
from devserver.local_defaults import LOCAL_DEV_SECRET
from devserver.template import read_routes

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_USER_ID = "SMNvHqYWgmJ8nrWAjyZbKfORegGUDHTO"
SAMPLE_TASK_ID = "1"
SAMPLE_CONVERSATION_ID = "1"
ISSUED_AT = 1_767_225_600  # 2026-01-01T00:00:00Z
EXPIRES_AT = 4_070_908_800  # 2099-01-01T00:00:00Z: the local secret is public, so is this token
REQUEST_TIME_EPOCH_MS = 1_767_225_600_000

# What each function's sample request sends beyond its route: query string and JSON body.
SAMPLE_REQUESTS: dict[str, dict[str, Any]] = {
    "ListTasksFunction": {"query": "status=pending"},
    "CreateTaskFunction": {"body": {"title": "Buy milk", "description": "2 litres"}},
    "UpdateTaskFunction": {"body": {"title": "Buy oat milk", "completed": True}},
    "HealthFunction": {"query": "check_database=true"},
    "ChatFunction": {"body": {"message": "add buy milk"}},
    "ListConversationsFunction": {"query": "limit=20"},
    "ListMessagesFunction": {"query": "limit=50"},
}

# The status each sample answers against a database holding the sample user's task and
# conversation (the test suite and `make lambda-check` check it).
EXPECTED_STATUS = {
    "health.json": 200,
    "list_tasks.json": 200,
    "create_task.json": 201,
    "get_task.json": 200,
    "update_task.json": 200,
    "delete_task.json": 204,
    "toggle_task.json": 200,
    "chat.json": 200,
    "list_conversations.json": 200,
    "list_messages.json": 200,
    "delete_conversation.json": 204,
}


def sample_token(user_id: str = SAMPLE_USER_ID) -> str:
    return jwt.encode(
        {"sub": user_id, "iat": ISSUED_AT, "exp": EXPIRES_AT}, LOCAL_DEV_SECRET, algorithm="HS256"
    )


def file_name(function: str) -> str:
    """``CreateTaskFunction`` -> ``create_task.json``."""
    stem = function.removesuffix("Function")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", stem).lower() + ".json"


def sample_events(template: Path) -> dict[str, dict[str, Any]]:
    """Every function's sample event, keyed by its file name under ``events/``."""
    events: dict[str, dict[str, Any]] = {}
    for route in read_routes(template):
        sample = SAMPLE_REQUESTS.get(route.function, {})
        parameters = {
            name: {
                "user_id": SAMPLE_USER_ID,
                "task_id": SAMPLE_TASK_ID,
                "conversation_id": SAMPLE_CONVERSATION_ID,
            }[name]
            for name in re.findall(r"\{(\w+)\}", route.path)
        }
        raw_path = route.path.format(**parameters)
        headers = {"user-agent": "curl/8.5.0", "accept": "application/json"}
        if "user_id" in parameters:
            headers["authorization"] = f"Bearer {sample_token()}"
        body = None
        if "body" in sample:
            body = json.dumps(sample["body"]).encode()
            headers["content-type"] = "application/json"
            headers["content-length"] = str(len(body))
        event = http_api_event(
            method=route.method,
            raw_path=raw_path,
            route_key=route.route_key,
            path_parameters=parameters or None,
            raw_query=sample.get("query", ""),
            headers=headers,
            body=body,
            source_ip="203.0.113.10",
            domain_name="abc123defg.execute-api.us-east-1.amazonaws.com",
        )
        context = event["requestContext"]
        context["requestId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, route.route_key))
        context["timeEpoch"] = REQUEST_TIME_EPOCH_MS
        context["time"] = "01/Jan/2026:00:00:00 +0000"
        context["apiId"] = "abc123defg"
        events[file_name(route.function)] = event
    return events


def render(event: dict[str, Any]) -> str:
    return json.dumps(event, indent=2, sort_keys=True) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if events/ is out of date")
    args = parser.parse_args()
    directory = PROJECT_ROOT / "events"
    stale = []
    for name, event in sample_events(PROJECT_ROOT / "template.yaml").items():
        path = directory / name
        text = render(event)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            directory.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        sys.exit(f"events/ is out of date ({', '.join(stale)}): run `make events`")


if __name__ == "__main__":
    main()
