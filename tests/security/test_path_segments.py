"""Hostile path segments on every route of template.yaml, in place of every path parameter:
encoded separators, dot segments, encoded digits, unicode, overlong, leading zeros. One status per
class, never a redirect, never a 5xx:

- a segment the gateway routes, but that is not a valid id or user id: 422 (the function matches
  the path as the client sent it, so ``1%2F`` is the id ``1%2F``, not ``1`` and a slash);
- a path the gateway does not route (a trailing slash, an empty segment): API Gateway's 404;
- a function handed a path with a trailing slash anyway: 404, never a 307 whose Location the
  client's Host and X-Forwarded-Proto headers would choose.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from devserver.events import decode_response_body, http_api_event
from devserver.server import Gateway
from devserver.template import Route
from tests.api_client import ApiClient, Response
from tests.security.routes import TEMPLATE_ROUTES, SendTo, filled_path
from tests.security.stored_data import stored_rows

ROUTES = [r for r in TEMPLATE_ROUTES if "{" in r.path]

HOSTILE_SEGMENTS = [
    "%2F", "1%2F", "1%2f2", "%2F1", "%5C", "1%5C", "1%5c2",  # encoded separators
    "%2e", "%2e%2e", "%2E%2E", "%2e%2e%2f", "..%2F..%2Fetc%2Fpasswd", ".", "..", ".%2e",  # dots
    "%31", "1%00", "%00", "1%20", "+1",  # encoded digits, NUL, space, sign
    "%C3%A9", "%EF%BC%91", "%E2%80%AE1", "é", "\u0661",  # unicode (a full-width and an Arabic 1)
    "01", "001", "0",  # leading zeros: one canonical spelling per id
    "9" * 400, "a" * 5000,  # overlong
    str(2**53), str(2**63),  # one past the largest id (2**53 - 1), and past bigint
]  # fmt: skip
# Only an id is held to plain digits and a range; a user id may be "01", "0" or a long number
# (Better Auth ids are letters and digits), but not the rest.
VALID_USER_IDS = {"01", "001", "0", str(2**53), str(2**63)}
UNROUTED_SHAPES = ["{path}/", "{path}//", "/{path}", "{path}/a/b", "/api//tasks"]


def _body(route: Route) -> Any:
    if route.path.endswith("/chat"):
        return {"message": "list my tasks"}
    return {"title": "from a path test"} if route.method in ("POST", "PUT") else None


def _problem(response: Response, expected: int) -> str | None:
    if response.status != expected or "location" in response.headers:
        return f"{response.status} {response.headers.get('location')} {response.body[:120]!r}"
    body = json.loads(response.body)
    if expected == 422 and not isinstance(body.get("detail"), list):
        return f"422 not in FastAPI's shape: {body}"
    return None


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.route_key)
def test_hostile_segments_in_every_path_parameter_are_422(
    route: Route, send_to: SendTo, direct_url: str
) -> None:
    before = stored_rows(direct_url)
    wrong = []
    for name in re.findall(r"\{(\w+)\}", route.path):
        for segment in HOSTILE_SEGMENTS:
            if name == "user_id" and segment in VALID_USER_IDS:
                continue
            # The token names the path's user exactly, so only the path's own checks stand.
            response = send_to(route, {name: segment}, json_body=_body(route))
            if problem := _problem(response, 422):
                wrong.append(f"{name}={segment[:20]!r}: {problem}")
    assert not wrong, "\n".join(wrong)
    assert stored_rows(direct_url) == before


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.route_key)
def test_unrouted_path_shapes_are_404_without_redirect(
    route: Route, api: ApiClient, seeded: dict[str, str], token_for: Callable[..., str]
) -> None:
    for shape in UNROUTED_SHAPES:
        path = shape.format(path=filled_path(route.path, seeded))
        response = api.request(
            route.method, path, token=token_for(seeded["user_id"]), json_body=_body(route)
        )
        assert _problem(response, 404) is None, (path, response.status, response.headers)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.route_key)
@pytest.mark.parametrize("raw_suffix", ["/", "%2F", "/%2e%2e%2f", "//"])
def test_function_never_redirects_a_path_it_does_not_serve(
    route: Route,
    gateway: Gateway,
    api: ApiClient,
    seeded: dict[str, str],
    token_for: Callable[..., str],
    raw_suffix: str,
) -> None:
    """The function itself, given an event the gateway would not route (a trailing slash, as
    a misconfigured proxy could send): a 404, and no Location built from the request."""
    path = filled_path(route.path, seeded) + raw_suffix
    body = _body(route)
    event = http_api_event(
        method=route.method,
        raw_path=path,
        route_key=route.route_key,
        path_parameters=dict(seeded),
        headers={
            "authorization": f"Bearer {token_for(seeded['user_id'])}",
            "content-type": "application/json",
            "host": "evil.example",
            "x-forwarded-proto": "javascript",
        },
        body=json.dumps(body).encode() if body is not None else None,
        domain_name="evil.example",
    )
    result = gateway.invoke(route, event)
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    assert int(result["statusCode"]) in (404, 422), (path, result)
    assert "location" not in headers, headers
    assert "detail" in json.loads(decode_response_body(result))


def test_path_segment_counts_are_reported() -> None:
    tried = sum(
        len(HOSTILE_SEGMENTS) - (len(VALID_USER_IDS) if name == "user_id" else 0)
        for r in ROUTES
        for name in re.findall(r"\{(\w+)\}", r.path)
    ) + len(ROUTES) * (len(UNROUTED_SHAPES) + 4)
    print(f"path segment requests: {tried}")
    assert tried > 400
