"""Generated from the merged OpenAPI document: every query and header parameter of every
operation gets values its schema forbids (422 each, in FastAPI's shape), and every operation
behind a bearer token gets malformed Authorization headers (401 with a Bearer challenge). A
parameter or operation added later is covered without a change here; one whose schema this
generator does not know fails the test."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from devserver.server import Gateway
from tests.api_client import ApiClient
from tests.security.routes import filled_path
from tests.security.stored_data import stored_rows

# (Surrounding spaces are not here: pydantic reads " 1" as 1 in a query, harmlessly; an id in
# a path is held to plain digits, tests/security/test_path_segments.py.)
INTEGER_VALUES = ["-1", "0", "1.5", "1e3", "abc", "0x10", "\u0661", "9" * 400, "%00", "1%00"]
BOOLEAN_VALUES = ["maybe", "2", "truthy", "%00"]
ENUM_VALUES = ["garbage", "ALL", "all ", "%00", "\u0430ll"]  # the last is a Cyrillic a
HEADER_VALUES = ["x" * 256, " leading", "trailing ", "tab\there", "del\x7f", "caf\xe9"]
AUTHORIZATION_SHAPES = [
    "Bearer",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "Token {token}",
    "Bearer {token} extra",
    "Bearer {token},Bearer {token}",  # a repeated header, joined by API Gateway
    "Bearer a.b",
    "Bearer a.b.c.d",
    "Bearer " + "A" * 8000,
    "Bearer ....",
    "Bearer {token}\x00",
]


def _pattern_values(schema: dict[str, Any]) -> list[str]:
    values = ["%00", "..", "%2F", "\u202e1.1"]
    if "maxLength" in schema:
        values.append("1" * (schema["maxLength"] + 1))
    return values


def hostile_values(schema: dict[str, Any], components: dict[str, Any]) -> list[str]:
    """Raw (already URL-encoded where needed) values that ``schema`` forbids."""
    if "$ref" in schema:
        target = components["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        assert "enum" in target, target
        return ENUM_VALUES
    if "anyOf" in schema:  # an optional value: T | null
        (schema,) = [s for s in schema["anyOf"] if s.get("type") != "null"]
    kind = schema.get("type")
    if kind == "integer":
        return INTEGER_VALUES
    if kind == "boolean":
        return BOOLEAN_VALUES
    if kind == "string" and "pattern" in schema:
        return _pattern_values(schema)
    raise AssertionError(f"no hostile values for the schema {schema}")


@pytest.fixture(scope="module")
def openapi(gateway: Gateway) -> dict[str, Any]:
    return gateway.openapi()


def _operations(
    openapi: dict[str, Any], seeded: dict[str, str]
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Every operation: its method, its path template, that path filled with ``seeded``'s ids."""
    return [
        (method.upper(), path, filled_path(path, seeded), operation)
        for path, operations in openapi["paths"].items()
        for method, operation in operations.items()
    ]


def _valid_body(operation: dict[str, Any]) -> Any:
    if "requestBody" not in operation:
        return None
    schema_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return {"message": "list my tasks"} if "Chat" in schema_ref else {"title": "from openapi"}


def test_every_query_and_header_parameter_refuses_what_its_schema_forbids(
    openapi: dict[str, Any],
    api: ApiClient,
    seeded: dict[str, str],
    token_for: Callable[..., str],
    direct_url: str,
) -> None:
    token = token_for(seeded["user_id"])
    before = stored_rows(direct_url)
    wrong, sent = [], 0
    for method, path_template, path, operation in _operations(openapi, seeded):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                continue  # tests/security/test_path_segments.py
            values = (
                HEADER_VALUES
                if parameter["in"] == "header"
                else hostile_values(parameter["schema"], openapi["components"])
            )
            for value in values:
                headers, url = {}, path
                if parameter["in"] == "header":
                    headers[parameter["name"].lower()] = value
                else:
                    url = f"{path}?{parameter['name']}={quote(value, safe='%')}"
                response = api.request(
                    method,
                    url,
                    token=token if "security" in operation else None,
                    json_body=_valid_body(operation),
                    headers=headers,
                )
                sent += 1
                if response.status != 422 or not isinstance(response.json()["detail"], list):
                    wrong.append(
                        f"{method} {path_template} {parameter['name']}={value[:20]!r}: "
                        f"{response.status} {response.body[:100]!r}"
                    )
    assert not wrong, "\n".join(wrong)
    assert stored_rows(direct_url) == before
    print(f"parameter values sent: {sent}")
    assert sent > 50


def test_every_secured_operation_refuses_malformed_authorization(
    openapi: dict[str, Any],
    api: ApiClient,
    seeded: dict[str, str],
    token_for: Callable[..., str],
    direct_url: str,
) -> None:
    token = token_for(seeded["user_id"])
    before = stored_rows(direct_url)
    wrong, secured = [], 0
    for method, path_template, path, operation in _operations(openapi, seeded):
        if "security" not in operation:
            continue
        secured += 1
        for shape in AUTHORIZATION_SHAPES:
            response = api.request(
                method,
                path,
                json_body=_valid_body(operation),
                headers={"authorization": shape.format(token=token)},
            )
            challenge = response.headers.get("www-authenticate", "")
            if response.status != 401 or not challenge.startswith("Bearer"):
                wrong.append(f"{method} {path_template} {shape[:30]!r}: {response.status}")
            json.loads(response.body)
    assert not wrong, "\n".join(wrong)
    assert stored_rows(direct_url) == before
    assert secured == 10
