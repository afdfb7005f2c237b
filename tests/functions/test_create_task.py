from collections.abc import Callable
from datetime import datetime

import psycopg
import pytest

from tests.api_client import ApiClient


def test_create_task_returns_201_and_the_task(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    response = api.post(
        f"/api/{alice}/tasks",
        token=token_for(alice),
        json_body={"title": "  Buy milk  ", "description": "2 litres\nsemi-skimmed"},
    )
    assert response.status == 201
    assert response.function == "CreateTaskFunction"
    task = response.json()
    assert task["title"] == "Buy milk"
    assert task["description"] == "2 litres\nsemi-skimmed"
    assert task["completed"] is False
    assert task["user_id"] == alice
    assert isinstance(task["id"], int)
    created = datetime.fromisoformat(task["created_at"])
    assert created.utcoffset() is not None
    assert task["created_at"] == task["updated_at"]
    assert response.headers["content-type"] == "application/json"


def test_create_task_is_stored(
    api: ApiClient, alice: str, token_for: Callable[..., str], direct_url: str
) -> None:
    created = api.post(f"/api/{alice}/tasks", token=token_for(alice), json_body={"title": "x"})
    with psycopg.connect(direct_url) as connection:
        row = connection.execute(
            "SELECT user_id, title, completed FROM task WHERE id = %s", (created.json()["id"],)
        ).fetchone()
    assert row == (alice, "x", False)


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({}, ["body", "title"]),
        ({"title": ""}, ["body", "title"]),
        ({"title": "   "}, ["body", "title"]),
        ({"title": "x" * 201}, ["body", "title"]),
        ({"title": "nul\u0000byte"}, ["body", "title"]),
        ({"title": "line\nbreak"}, ["body", "title"]),
        ({"title": "\u200b"}, ["body", "title"]),  # renders as nothing: zero-width space
        ({"title": " \u200f\u2060\ufe0f "}, ["body", "title"]),  # a mark, a joiner, a selector
        ({"title": "surrogate \ud800"}, ["body", "title"]),
        ({"title": 5}, ["body", "title"]),
        ({"title": None}, ["body", "title"]),
        ({"title": "ok", "description": "d" * 1001}, ["body", "description"]),
        ({"title": "ok", "description": "nul\u0000"}, ["body", "description"]),
        ({"title": "ok", "description": "bell\u0007"}, ["body", "description"]),
        ({"title": "ok", "description": ["a"]}, ["body", "description"]),
        ({"title": "ok", "completed": True}, ["body", "completed"]),
        ([{"title": "array"}], ["body"]),
    ],
)
def test_create_task_invalid_body_is_422(
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    body: object,
    location: list[str],
    direct_url: str,
) -> None:
    response = api.post(f"/api/{alice}/tasks", token=token_for(alice), json_body=body)
    assert response.status == 422
    assert response.json()["detail"][0]["loc"] == location
    with psycopg.connect(direct_url) as connection:
        assert connection.execute("SELECT count(*) FROM task").fetchone() == (0,)


TITLE_LENGTH_ERRORS = [
    ("x" * 201, "string_too_long", "String should have at most 200 characters"),
    ("  " + "x" * 201 + "  ", "string_too_long", "String should have at most 200 characters"),
    ("", "string_too_short", "String should have at least 1 character"),
    (" \t\u3000 ", "string_too_short", "String should have at least 1 character"),
]
"""A title too long or blank (after trimming), and pydantic's own wording for a string, as for
any other string field: not "Value should have at most 200 items after validation", which the
trimming once turned it into."""


@pytest.mark.parametrize(("title", "kind", "message"), TITLE_LENGTH_ERRORS)
def test_create_task_title_length_errors_count_characters(
    api: ApiClient, alice: str, token_for: Callable[..., str], title: str, kind: str, message: str
) -> None:
    response = api.post(f"/api/{alice}/tasks", token=token_for(alice), json_body={"title": title})
    assert response.status == 422, response.body
    [problem] = response.json()["detail"]
    assert (problem["type"], problem["msg"], problem["loc"]) == (kind, message, ["body", "title"])


@pytest.mark.parametrize("title", ["\u200bok", "\u2139\ufe0f", "\u05e9\u05dc\u05d5\u05dd!\u200f"])
def test_create_task_title_with_invisible_characters_beside_visible_ones_is_kept(
    api: ApiClient, alice: str, token_for: Callable[..., str], title: str
) -> None:
    # A zero-width space, an emoji's variation selector, a right-to-left mark: kept as sent.
    response = api.post(f"/api/{alice}/tasks", token=token_for(alice), json_body={"title": title})
    assert response.status == 201, response.body
    assert response.json()["title"] == title


def test_create_task_title_of_200_characters_accepted(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    title = "é" * 200
    response = api.post(f"/api/{alice}/tasks", token=token_for(alice), json_body={"title": title})
    assert response.status == 201
    assert response.json()["title"] == title


def test_create_task_description_of_1000_characters_with_newlines_accepted(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    description = ("é" * 99 + "\n") * 10
    assert len(description) == 1000
    response = api.post(
        f"/api/{alice}/tasks",
        token=token_for(alice),
        json_body={"title": "t", "description": description},
    )
    assert response.status == 201, response.body
    assert response.json()["description"] == description


@pytest.mark.parametrize(
    "raw",
    [b'{"title": "unterminated', b"not json", b"", b'{"title": "a"} trailing', b"\xff\xfe"],
)
def test_create_task_malformed_json_is_422(
    api: ApiClient, alice: str, token_for: Callable[..., str], raw: bytes
) -> None:
    response = api.post(
        f"/api/{alice}/tasks",
        token=token_for(alice),
        body=raw,
        headers={"content-type": "application/json"},
    )
    assert response.status == 422
    assert isinstance(response.json()["detail"], list)


def test_create_task_body_over_limit_is_413(
    api: ApiClient, alice: str, token_for: Callable[..., str]
) -> None:
    body = b'{"title": "' + b"a" * 70_000 + b'"}'
    response = api.post(
        f"/api/{alice}/tasks",
        token=token_for(alice),
        body=body,
        headers={"content-type": "application/json"},
    )
    assert response.status == 413
    assert "limit" in response.json()["detail"]


@pytest.mark.parametrize(("extra", "status"), [(0, 201), (1, 413)])
def test_create_task_body_at_the_limit_is_accepted_one_byte_more_is_413(
    api: ApiClient, alice: str, token_for: Callable[..., str], extra: int, status: int
) -> None:
    document = b'{"title": "at the limit"}'
    body = document + b" " * (64 * 1024 - len(document) + extra)  # MAX_BODY_BYTES' default
    response = api.post(
        f"/api/{alice}/tasks",
        token=token_for(alice),
        body=body,
        headers={"content-type": "application/json"},
    )
    assert response.status == status, response.body


def test_create_task_without_token_is_401(api: ApiClient, alice: str) -> None:
    response = api.post(f"/api/{alice}/tasks", json_body={"title": "x"})
    assert response.status == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_create_task_for_another_user_is_403(
    api: ApiClient, alice: str, bob: str, token_for: Callable[..., str], direct_url: str
) -> None:
    response = api.post(f"/api/{alice}/tasks", token=token_for(bob), json_body={"title": "x"})
    assert response.status == 403
    with psycopg.connect(direct_url) as connection:
        assert connection.execute("SELECT count(*) FROM task").fetchone() == (0,)
