"""Bodies whose bytes are valid UTF-8 but hold raw NUL bytes. ASCII-only JSON written in
UTF-16 or UTF-32 without a BOM is such a body (each character padded with NULs), and Python's
``json`` reads bytes in whichever of UTF-8/16/32 their first four bytes suggest: such a body was
served (201/200) although a body must be UTF-8 JSON. No UTF-8 JSON holds a raw NUL (RFC 8259:
control characters are escaped in strings, and are not whitespace), so every one is a 422."""

from __future__ import annotations

import json

import pytest

from devserver.template import Route
from tests.security.conftest import seeded, send_to  # noqa: F401  (fixtures)
from tests.security.routes import TEMPLATE_ROUTES, SendTo
from tests.security.stored_data import stored_rows

BODY_ROUTES = [r for r in TEMPLATE_ROUTES if r.method in ("POST", "PUT")]

ENCODINGS = ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"]


def _document(route: Route) -> str:
    field = "message" if route.path.endswith("/chat") else "title"
    return json.dumps({field: "ascii only"})


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: r.route_key)
def test_ascii_json_in_utf16_or_utf32_without_bom_is_422(
    route: Route,
    send_to: SendTo,  # noqa: F811
    direct_url: str,
) -> None:
    before = stored_rows(direct_url)
    bodies = {
        **{encoding: _document(route).encode(encoding) for encoding in ENCODINGS},
        "nul before": b"\x00" + _document(route).encode(),
        "nul after": _document(route).encode() + b"\x00",
        "nul as whitespace": _document(route).encode().replace(b": ", b":\x00"),
    }
    for name, body in bodies.items():
        body.decode("utf-8")  # valid UTF-8, every one
        response = send_to(route, body=body, headers={"content-type": "application/json"})
        assert response.status == 422, (route.route_key, name, response.status, response.body)
        (problem,) = response.json()["detail"]
        assert (problem["type"], problem["loc"]) == ("json_invalid", ["body"]), problem
        assert "must be UTF-8 JSON" in problem["msg"], problem
    assert stored_rows(direct_url) == before
