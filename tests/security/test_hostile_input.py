"""Hostile input on every endpoint of template.yaml: each one a 4xx JSON error, never a 500,
and the stored data unchanged."""

from __future__ import annotations

import json
import re

import pytest

from devserver.template import Route
from tests.api_client import Response
from tests.security.routes import TEMPLATE_ROUTES as ROUTES
from tests.security.routes import SendTo
from tests.security.stored_data import stored_rows

BODY_ROUTES = [r for r in ROUTES if r.method in ("POST", "PUT")]
ID_ROUTES = [r for r in ROUTES if re.search(r"\{(task_id|conversation_id)\}", r.path)]
USER_ROUTES = [r for r in ROUTES if "{user_id}" in r.path]

JSON = "application/json"
# FIELD stands for the route's one required text field ("title", or the chat's "message"), so
# that each body is refused for its own flaw and not merely for carrying a field the route does
# not know (which would hide a NUL or a lone surrogate that gets through).
# (A leading BOM is not hostile: UTF-8 JSON with one is served, see test_body_encodings.)
HOSTILE_BODIES: dict[str, tuple[bytes, str]] = {
    "truncated": (b'{"FIELD": "x', JSON),
    "open brace": (b"{", JSON),
    "not json": (b"this is not json", JSON),
    "null": (b"null", JSON),
    "array": (b'[{"FIELD": "x"}]', JSON),
    "string": (b'"FIELD"', JSON),
    "number": (b"123", JSON),
    "null field": (b'{"FIELD": null}', JSON),
    "list field": (b'{"FIELD": ["a"]}', JSON),
    "object field": (b'{"FIELD": {"a": 1}}', JSON),
    "nul": (b'{"FIELD": "a\\u0000b"}', JSON),
    "bell": (b'{"FIELD": "bell\\u0007"}', JSON),
    "escape": (b'{"FIELD": "esc\\u001b[2J"}', JSON),
    "c1 control": (b'{"FIELD": "next\\u0085line"}', JSON),
    "invalid utf-8": (b'{"FIELD": "\xff\xfe"}', JSON),
    "truncated utf-8": (b'{"FIELD": "\xc3\x28"}', JSON),
    "lone high surrogate": (b'{"FIELD": "\\ud800"}', JSON),
    "lone low surrogate": (b'{"FIELD": "x\\udfff"}', JSON),
    "1 MB": (b'{"FIELD": "' + b"a" * 1_000_000 + b'"}', JSON),
    "10 MB": (b'{"FIELD": "' + b"b" * 10_000_000 + b'"}', JSON),
    "deeply nested": (b'{"FIELD": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", JSON),
    "unknown fields": (
        b'{"FIELD": "x", "user_id": "mallory", "is_admin": true, "id": 1}',
        JSON,
    ),
    "huge number": (b'{"FIELD": "x", "conversation_id": 1e400}', JSON),
    # Python's json reads these (RFC 8259 has no such numbers); a 422 must not write them back.
    "nan": (b'{"FIELD": NaN}', JSON),
    "infinities in a list": (b'{"FIELD": "x", "conversation_id": [-Infinity, 1e999]}', JSON),
    "negative id": (b'{"FIELD": "x", "conversation_id": -1}', JSON),
    "text/plain": (b'{"FIELD": "x"}', "text/plain"),
    "form": (b"FIELD=x", "application/x-www-form-urlencoded"),
    "empty": (b"", JSON),
}
HOSTILE_IDS = [
    "-1", "0", "1.5", "1e3", "0x10", "abc", " 1", "1 ", "\uff11", str(2**53), str(2**63),
    "99999999999999999999999999", "%2e%2e", "..%2F..%2Fetc%2Fpasswd", "1%2F2", "1%00", "%00",
    "1;DROP TABLE task", "'", "%27%20OR%201%3D1",
]  # fmt: skip
HOSTILE_USER_IDS = [
    "..", "%2e%2e", "a%2Fb", "x" * 200, "%00", "%3Cscript%3E", "alice%20", "%E2%80%AE",
]  # fmt: skip
HOSTILE_QUERIES = [
    "status=garbage", "status=all&status=pending", "limit=-1", "limit=0", "limit=abc",
    "limit=99999999999999999999", "limit=1e3", "cursor=..%2F", "cursor=1.", "cursor=%00.1",
    "cursor=" + "9" * 40 + ".1", "cursor=0.1", "cursor=01.1", "cursor=1.0",
    "cursor=" + "9" * 19 + ".1", "check_database=maybe",
    # pydantic reads all of these as integers; a count in a URL is plain ASCII digits.
    "limit=5_0", "limit=%2B5", "limit=%205", "limit=5%20", "limit=5.0", "limit=05",
    "limit=%EF%BC%95",
]  # fmt: skip


def _strict_json(body: bytes) -> object:
    """``body`` parsed as RFC 8259 JSON, which a browser's ``JSON.parse`` reads: no ``NaN``,
    ``Infinity`` or ``-Infinity`` (Python's json accepts them)."""

    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} is not JSON: {body[:300]!r}")

    return json.loads(body, parse_constant=refuse)


def _assert_clean_4xx(response: Response, what: str) -> None:
    assert 400 <= response.status < 500, (what, response.status, response.body[:300])
    body = _strict_json(response.body)
    assert isinstance(body, dict)
    assert "detail" in body or "message" in body, (what, body)


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: r.route_key)
def test_hostile_bodies_are_4xx_json_and_change_nothing(
    route: Route, send_to: SendTo, direct_url: str
) -> None:
    before = stored_rows(direct_url)
    field = b"message" if route.path.endswith("/chat") else b"title"
    for name, (template, content_type) in HOSTILE_BODIES.items():
        body = template.replace(b"FIELD", field)
        response = send_to(route, body=body, headers={"content-type": content_type})
        _assert_clean_4xx(response, f"{route.route_key} with {name}")
    assert stored_rows(direct_url) == before


# Lone surrogates where a 422 repeats the request: a value, a field's name (refused as a whole
# body that is not Unicode, with the name as its input), values in a list, a value cut to its
# first 100 characters.
LONE_SURROGATE_BODIES = {
    "value": b'{"FIELD": "a\\ud800b"}',
    "low half": b'{"FIELD": "\\udfff"}',
    "field name": b'{"FIELD": "x", "\\udbff": 1}',
    "in a list": b'{"FIELD": ["\\ud800", "\\udc00"]}',
    "long value": b'{"FIELD": "' + b"\\ud800" * 150 + b'"}',
}
# What strict parsers (Rust's serde_json; Go's encoding/json replaces it) refuse in JSON.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: r.route_key)
def test_hostile_lone_surrogate_is_echoed_as_a_replacement_character(
    route: Route, send_to: SendTo, direct_url: str
) -> None:
    before = stored_rows(direct_url)
    field = b"message" if route.path.endswith("/chat") else b"title"
    for name, template in LONE_SURROGATE_BODIES.items():
        response = send_to(
            route, body=template.replace(b"FIELD", field), headers={"content-type": JSON}
        )
        assert response.status == 422, (route.route_key, name, response.body[:300])
        assert not _SURROGATE_ESCAPE.search(response.body), (route.route_key, name, response.body)
        body = json.loads(response.body.decode("utf-8", errors="strict"))
        assert "\ufffd" in json.dumps(body["detail"], ensure_ascii=False), (name, body)
    assert stored_rows(direct_url) == before


@pytest.mark.parametrize("route", ID_ROUTES, ids=lambda r: r.route_key)
def test_hostile_ids_are_4xx_json_and_change_nothing(
    route: Route, send_to: SendTo, direct_url: str
) -> None:
    before = stored_rows(direct_url)
    body = {"title": "x"} if route.method == "PUT" else None
    for hostile in HOSTILE_IDS:
        values = {"task_id": hostile, "conversation_id": hostile}
        response = send_to(route, values, json_body=body)
        _assert_clean_4xx(response, f"{route.route_key} with id {hostile!r}")
    assert stored_rows(direct_url) == before


@pytest.mark.parametrize("route", USER_ROUTES, ids=lambda r: r.route_key)
def test_hostile_user_ids_are_4xx_json_and_change_nothing(
    route: Route, send_to: SendTo, direct_url: str
) -> None:
    before = stored_rows(direct_url)
    body = {"title": "x", "message": "x"} if route.method in ("POST", "PUT") else None
    if route.route_key.endswith("/tasks") and route.method == "POST":
        body = {"title": "x"}
    if route.route_key.endswith("/chat"):
        body = {"message": "add x"}
    if route.method == "PUT":
        body = {"title": "x"}
    for hostile in HOSTILE_USER_IDS:
        # The token is for exactly that (odd) user id: only the path's own checks stand.
        response = send_to(route, {"user_id": hostile}, json_body=body)
        _assert_clean_4xx(response, f"{route.route_key} as user {hostile!r}")
    assert stored_rows(direct_url) == before


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if r.method == "GET"], ids=lambda r: r.route_key
)
def test_hostile_queries_are_never_5xx(route: Route, send_to: SendTo, direct_url: str) -> None:
    before = stored_rows(direct_url)
    for query in HOSTILE_QUERIES:
        response = send_to(route, query=query)
        # A route that has no such parameter ignores it (2xx); one that has it refuses it.
        assert response.status < 500, (route.route_key, query, response.body[:300])
        _strict_json(response.body)
        parameter = query.split("=", 1)[0]
        # A repeated parameter is read once (the last value), like any web framework does.
        if parameter in _query_parameters(route) and "&" not in query:
            _assert_clean_4xx(response, f"{route.route_key}?{query}")
    assert stored_rows(direct_url) == before


def _query_parameters(route: Route) -> set[str]:
    return {
        "ListTasksFunction": {"status", "limit", "cursor"},
        "ListConversationsFunction": {"limit", "cursor"},
        "ListMessagesFunction": {"limit", "cursor"},
        "HealthFunction": {"check_database"},
        "GetTaskFunction": set(),
    }[route.function]


def test_hostile_input_counts_are_reported() -> None:
    tried = (
        len(BODY_ROUTES) * len(HOSTILE_BODIES)
        + len(ID_ROUTES) * len(HOSTILE_IDS)
        + len(USER_ROUTES) * len(HOSTILE_USER_IDS)
        + len([r for r in ROUTES if r.method == "GET"]) * len(HOSTILE_QUERIES)
    )
    print(f"hostile requests: {tried}")
    assert tried > 300
