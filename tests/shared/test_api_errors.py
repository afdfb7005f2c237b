"""The request guard and error mapping every function's app shares (``todo_core.api``), through
the real handlers: security headers on every answer, the body limit counted as the body arrives,
and an unexpected error that is a JSON 500 logged by its type alone."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.api_client import ApiClient, Response
from todo_core.tasks import service

CANARY = "CANARY-4be1d0"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
}


def _has_security_headers(response: Response) -> bool:
    return all(response.headers.get(name) == value for name, value in SECURITY_HEADERS.items())


def _raise_unexpected(*args: object, **kwargs: object) -> None:
    raise RuntimeError(f"something quoted the request: {CANARY}")


def test_api_security_headers_on_success_and_on_each_kind_of_error(
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = token_for(alice)
    responses = {
        200: api.get(f"/api/{alice}/tasks", token=token),
        401: api.get(f"/api/{alice}/tasks"),
        404: api.get(f"/api/{alice}/tasks/999999", token=token),
        413: api.post(f"/api/{alice}/tasks", token=token, body=b" " * (64 * 1024 + 1)),
        422: api.post(f"/api/{alice}/tasks", token=token, json_body={"title": ""}),
    }
    monkeypatch.setattr(service, "list_task_page", _raise_unexpected)
    responses[500] = api.get(f"/api/{alice}/tasks", token=token)
    assert {status: r.status for status, r in responses.items()} == {s: s for s in responses}
    assert [s for s, r in responses.items() if not _has_security_headers(r)] == []


def test_api_body_limit_is_counted_as_the_body_arrives(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    # A Content-Length that understates the body does not get it past the limit.
    response = api.post(
        f"/api/{alice}/tasks",
        token=token_for(alice),
        body=b'{"title": "' + b"a" * 70_000 + b'"}',
        headers={"content-type": "application/json", "content-length": "20"},
    )
    assert response.status == 413, response.body


def test_api_unexpected_error_is_json_500_logged_by_type_only(
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(service, "list_task_page", _raise_unexpected)
    response = api.get(f"/api/{alice}/tasks", token=token_for(alice))
    assert response.status == 500
    assert response.json() == {"detail": "Internal server error"}
    assert "unhandled error: RuntimeError" in caplog.text
    assert CANARY not in caplog.text


def test_api_422_lists_at_most_20_problems_repeating_at_most_100_characters(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    long_name, long_value = "n" * 5000, ["x" * 5000]
    body = {"title": long_value, long_name: 1, **{f"unknown_{n}": n for n in range(30)}}
    response = api.post(f"/api/{alice}/tasks", token=token_for(alice), json_body=body)
    assert response.status == 422
    problems = response.json()["detail"]
    assert len(problems) == 20
    title, name = problems[0], problems[1]
    assert title["loc"] == ["body", "title"]
    assert title["input"] == json.dumps(long_value)[:100] + "…"
    assert name["loc"] == ["body", long_name[:100] + "…"]
