"""Every content type x every body encoding on every route of template.yaml that takes a body:
one documented status per class, never a 5xx, and a refused body changes nothing.

- A JSON body (``application/json`` or ``application/*+json``, no charset or ``charset=utf-8``)
  in UTF-8 (a leading BOM is ignored, as RFC 8259 allows) is served.
- Anything else is a 422 in FastAPI's shape: bytes that are not UTF-8 (Latin-1, UTF-16 with or
  without a BOM, UTF-32, invalid or overlong sequences, encoded surrogates), a declared charset
  other than UTF-8, a content type that is not JSON (or none), and JSON the server will not read:
  malformed, nested too deeply, a number too large, a NUL or a lone surrogate in a string.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from devserver.template import Route
from tests.api_client import Response
from tests.security.routes import TEMPLATE_ROUTES, SendTo
from tests.security.stored_data import stored_rows

BODY_ROUTES = [r for r in TEMPLATE_ROUTES if r.method in ("POST", "PUT")]

TEXT = "café crème ☕"  # non-ASCII on purpose: every encoding writes it differently
SERVED, REFUSED = "served", "422"
MAX_ERROR_BYTES = 8 * 1024

CONTENT_TYPES: dict[str, str | None] = {
    "json": "application/json",
    "json utf-8": "application/json; charset=utf-8",
    "json UTF8": "application/json;charset=UTF8",
    "+json": "application/vnd.todo+json",
    "+json named charset": "application/vnd.charset+json; profile=charset",
    "json latin-1": "application/json; charset=iso-8859-1",
    "json utf-16": "application/json; charset=utf-16",
    "text/plain": "text/plain",
    "text/plain utf-8": "text/plain; charset=utf-8",
    "form": "application/x-www-form-urlencoded",
    "multipart": "multipart/form-data; boundary=xyz",
    "none": None,
    "garbage": "a/b/c;;;=",
}
JSON_CONTENT_TYPES = {"json", "json utf-8", "json UTF8", "+json", "+json named charset"}


def _field(route: Route) -> str:
    return "message" if route.path.endswith("/chat") else "title"


def _document(route: Route, text: str) -> str:
    return json.dumps({_field(route): text}, ensure_ascii=False)


ENCODINGS: dict[str, Callable[[Route], bytes]] = {
    "utf-8": lambda r: _document(r, TEXT).encode(),
    "utf-8 with bom": lambda r: b"\xef\xbb\xbf" + _document(r, TEXT).encode(),
    "latin-1": lambda r: _document(r, "café crème").encode("latin-1"),
    "utf-16 with bom": lambda r: _document(r, TEXT).encode("utf-16"),
    "utf-16-le without bom": lambda r: _document(r, TEXT).encode("utf-16-le"),
    "utf-16-be without bom": lambda r: _document(r, TEXT).encode("utf-16-be"),
    "utf-32": lambda r: _document(r, TEXT).encode("utf-32"),
    "invalid bytes": lambda r: _document(r, "caf@").encode().replace(b"@", b"\xff\xfe"),
    "overlong slash": lambda r: _document(r, "a@b").encode().replace(b"@", b"\xc0\xaf"),
    "encoded surrogate": lambda r: _document(r, "a@b").encode().replace(b"@", b"\xed\xa0\x80"),
    "truncated sequence": lambda r: _document(r, "a@").encode().replace(b"@", b"\xe2\x98"),
    "escaped lone surrogate": lambda r: _document(r, "a@b").encode().replace(b"@", b"\\ud800"),
    "raw nul": lambda r: _document(r, "a@b").encode().replace(b"@", b"\x00"),
    "escaped nul": lambda r: _document(r, "a@b").encode().replace(b"@", b"\\u0000"),
    "deep nesting": lambda r: (
        f'{{"{_field(r)}": "x", "n": '.encode() + b"[" * 20_000 + b"]" * 20_000 + b"}"
    ),
    "huge integer": lambda r: f'{{"{_field(r)}": "x", "n": {"9" * 5000}}}'.encode(),
    "malformed": lambda r: _document(r, TEXT).encode()[:-2],
}
SERVED_ENCODINGS = {"utf-8", "utf-8 with bom"}


def expected(content_type: str, encoding: str) -> str:
    """One status per class: served, or 422."""
    if content_type in JSON_CONTENT_TYPES and encoding in SERVED_ENCODINGS:
        return SERVED
    return REFUSED


CASES = [(c, e) for c in CONTENT_TYPES for e in ENCODINGS]


def _send(send_to: SendTo, route: Route, case: tuple[str, str]) -> Response:
    content_type, encoding = case
    header = CONTENT_TYPES[content_type]
    return send_to(
        route,
        body=ENCODINGS[encoding](route),
        headers={"content-type": header} if header is not None else None,
    )


def _problem_with_422(response: Response) -> str | None:
    """What is wrong with ``response`` as a 422 in FastAPI's shape, or None."""
    if response.status != 422:
        return f"{response.status} {response.body[:120]!r}"
    if len(response.body) > MAX_ERROR_BYTES:
        return f"422 of {len(response.body)} bytes"
    problems = response.json()["detail"]
    if not isinstance(problems, list) or not problems:
        return f"422 not in FastAPI's shape: {problems!r}"
    if not all({"loc", "msg", "type"} <= set(problem) for problem in problems):
        return f"422 not in FastAPI's shape: {problems!r}"
    return None


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: r.route_key)
def test_every_content_type_and_encoding_has_one_status_per_class(
    route: Route, send_to: SendTo, direct_url: str
) -> None:
    refused = [case for case in CASES if expected(*case) == REFUSED]
    served = [case for case in CASES if expected(*case) == SERVED]
    before = stored_rows(direct_url)
    wrong = [
        f"{case}: {problem}"
        for case in refused
        if (problem := _problem_with_422(_send(send_to, route, case)))
    ]
    assert not wrong, "\n".join(wrong) + f"\n({len(wrong)} wrong of {len(refused)})"
    assert stored_rows(direct_url) == before, "a refused body changed the stored data"
    for case in served:
        response = _send(send_to, route, case)
        assert response.status in (200, 201), (case, response.status, response.body[:300])
        stored = response.json()
        text = stored.get("title") or stored.get("response")
        assert text, (case, stored)
        if _field(route) == "title":
            assert stored["title"] == TEXT, (case, stored)


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: r.route_key)
@pytest.mark.parametrize(
    "body",
    [
        # 2,000 unknown fields (a 58 KB body): one problem each, unbounded.
        "{" + ",".join(f'"unknown_field_{n:04}_{"k" * 2}": "{"v" * 2}"' for n in range(2000)) + "}",
        # A long value of the wrong type: echoed whole as the problem's input.
        '{"title": ["' + "x" * 60_000 + '"], "message": ["' + "y" * 1000 + '"]}',
        # A long field name.
        '{"' + "n" * 60_000 + '": 1}',
        # A float read as an integer of 301 digits (the chat's conversation_id).
        '{"title": "x", "message": "x", "conversation_id": 1e300}',
    ],
    ids=["many unknown fields", "long input", "long field name", "long number"],
)
def test_error_bodies_repeat_a_bounded_part_of_the_input(
    route: Route, send_to: SendTo, body: str
) -> None:
    response = send_to(route, body=body.encode(), headers={"content-type": "application/json"})
    assert _problem_with_422(response) is None, (len(body), response.status, response.body[:200])
    problems = response.json()["detail"]
    assert len(problems) <= 20
    for problem in problems:
        assert len(json.dumps(problem)) < 400, problem


@pytest.mark.parametrize(
    ("content_type", "encoding", "reason"),
    [
        ("json", "utf-16 with bom", "not valid UTF-8"),
        ("json", "invalid bytes", "not valid UTF-8"),
        ("json latin-1", "utf-8", "charset is not UTF-8"),
        ("json", "deep nesting", "nested too deeply"),
        ("json", "huge integer", "could not be parsed"),
    ],
)
def test_unreadable_body_says_why(
    send_to: SendTo, content_type: str, encoding: str, reason: str
) -> None:
    route = next(r for r in BODY_ROUTES if r.method == "POST" and r.path.endswith("/tasks"))
    response = _send(send_to, route, (content_type, encoding))
    assert _problem_with_422(response) is None
    (problem,) = response.json()["detail"]
    assert problem["type"] == "json_invalid"
    assert problem["loc"] == ["body"]
    assert reason in problem["msg"], problem


def test_body_encoding_counts_are_reported() -> None:
    tried = len(BODY_ROUTES) * len(CASES)
    print(f"body encoding requests: {tried}")
    assert len(BODY_ROUTES) == 3
    assert tried == 3 * len(CONTENT_TYPES) * len(ENCODINGS)
