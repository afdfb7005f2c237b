"""What the local server does in API Gateway's place, beyond routing: the CORS headers exactly as
template.yaml configures them, the gateway's own body limit, and URL-decoded path parameters."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from devserver.cors import read_cors_policy
from devserver.server import API_GATEWAY_MAX_BODY
from tests.devserver_process import call, running_server

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = "https://app.example.com"


def test_gateway_cors_headers_are_exactly_the_templates() -> None:
    policy = read_cors_policy(ROOT / "template.yaml", {"FRONTEND_ORIGIN": FRONTEND})
    assert policy.preflight_headers(FRONTEND) == {
        "access-control-allow-origin": FRONTEND,
        "access-control-allow-methods": "GET,POST,PUT,PATCH,DELETE,OPTIONS",
        "access-control-allow-headers": "authorization,content-type,idempotency-key",
        "access-control-max-age": "600",
        "vary": "origin",
    }
    assert policy.response_headers(FRONTEND) == {
        "access-control-allow-origin": FRONTEND,
        "access-control-expose-headers": "retry-after,www-authenticate,idempotent-replayed",
        "vary": "origin",
    }
    assert policy.preflight_headers("https://evil.example.com") == {}
    assert policy.response_headers("https://evil.example.com") == {}


def _status_of_oversized_post(base: str, path: str) -> int:
    """Announce a body one byte over API Gateway's limit, send none: the gateway answers from
    the header alone (a server that waited for the body would time out here)."""
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=5)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Length", str(API_GATEWAY_MAX_BODY + 1))
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def test_gateway_body_limit_and_raw_path_parameters(
    app_environment: dict[str, str], tmp_path: Path, alice: str, token_for: Callable[..., str]
) -> None:
    token = token_for(alice)
    with running_server(app_environment, tmp_path, "--no-migrate") as base:
        tasks = f"{base}/api/{alice}/tasks"
        status, _, task = call("POST", tasks, token=token, body={"title": "x"})
        assert status == 201
        assert isinstance(task, dict)
        # API Gateway hands the function the raw path: an id is plain digits as sent, so a
        # percent-encoded one is not an id (422), while the plain one is served.
        encoded_id = "".join(f"%{ord(digit):02X}" for digit in str(task["id"]))
        encoded = call("GET", f"{tasks}/{encoded_id}", token=token)
        read = call("GET", f"{tasks}/{task['id']}", token=token)
        too_large = _status_of_oversized_post(base, f"/api/{alice}/tasks")
    assert encoded[0] == 422
    assert (read[0], read[2]) == (200, task)
    assert too_large == 413
