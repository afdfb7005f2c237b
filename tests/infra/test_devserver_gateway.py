"""What the local server does in API Gateway's place, beyond routing: the CORS headers exactly as
template.yaml configures them, the gateway's own body limit, and an encoded path segment handed
to the function as sent (it routes on the raw path)."""

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
        "access-control-expose-headers": "retry-after,www-authenticate,idempotent-replayed,link",
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


def test_gateway_body_limit_and_encoded_path_segments(
    app_environment: dict[str, str], tmp_path: Path, alice: str, token_for: Callable[..., str]
) -> None:
    token = token_for(alice)
    with running_server(app_environment, tmp_path, "--no-migrate") as base:
        tasks = f"{base}/api/{alice}/tasks"
        status, _, task = call("POST", tasks, token=token, body={"title": "x"})
        assert status == 201
        assert isinstance(task, dict)
        encoded_id = "".join(f"%{ord(digit):02X}" for digit in str(task["id"]))
        read = call("GET", f"{tasks}/{encoded_id}", token=token)
        too_large = _status_of_oversized_post(base, f"/api/{alice}/tasks")
    # The gateway routes `%35` like `5` (the function is reached, not the gateway's 404), and the
    # function matches the raw path, where an id has one spelling: plain digits.
    assert read[0] == 422, read
    assert isinstance(read[2], dict)
    assert [problem["loc"] for problem in read[2]["detail"]] == [["path", "task_id"]]
    assert too_large == 413
