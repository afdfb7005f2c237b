"""The local server speaks HTTP as API Gateway does, checked over a real socket: malformed
framing is a quick 400 (no hang, no dropped connection), chunked bodies reach the function,
repeated headers are joined with commas, the gateway's own answers (400, 404, 413, preflight)
carry the CORS and security headers, and the access log holds no query string."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devserver.__main__ import DEFAULT_PORT
from devserver.cors import read_cors_policy
from tests.devserver_process import running_server

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "http://app.test:5173"
SECURITY_HEADERS = {"x-content-type-options", "cache-control", "referrer-policy"}


@pytest.fixture(scope="module")
def server(
    app_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """One local server (its base URL and its log file), allowing ORIGIN by CORS."""
    directory = tmp_path_factory.mktemp("devserver-http")
    environment = {**app_environment, "FRONTEND_ORIGIN": ORIGIN}
    with running_server(environment, directory, "--no-migrate") as base:
        yield base, directory / "devserver.log"


def exchange(base: str, raw: bytes, *, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` on a new connection; the response's status, headers and body. Fails (rather
    than hangs) when the server does not answer within ``timeout``."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(raw)
        received = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in received or not _complete(received):
            if time.monotonic() > deadline:
                raise AssertionError(f"no complete answer within {timeout} s: {received!r}")
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                raise AssertionError(f"no answer within {timeout} s: {received!r}") from None
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head, "the connection was closed without an answer"
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def _complete(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return len(body) >= int(value)
    return True


def request(method: str, path: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _assert_gateway_headers(headers: dict[str, str]) -> None:
    assert headers.get("access-control-allow-origin") == ORIGIN, headers
    assert set(headers) >= SECURITY_HEADERS, headers


@pytest.mark.parametrize(
    "length", ["-1", "abc", "1 2", "+5", "0x10", "", "99999999999999999999999"]
)
def test_malformed_content_length_is_a_quick_400(
    server: tuple[str, Path], alice: str, length: str
) -> None:
    base, _ = server
    raw = request("POST", f"/api/{alice}/tasks", f"Content-Length: {length}", f"Origin: {ORIGIN}")
    status, headers, body = exchange(base, raw + b'{"title": "x"}')
    expected = 413 if length.isdigit() else 400
    assert status == expected, (status, body)
    assert "message" in json.loads(body)
    _assert_gateway_headers(headers)


def test_content_length_with_transfer_encoding_is_400(server: tuple[str, Path], alice: str) -> None:
    base, _ = server
    raw = request(
        "POST",
        f"/api/{alice}/tasks",
        "Content-Length: 4",
        "Transfer-Encoding: chunked",
        f"Origin: {ORIGIN}",
        body=b"0\r\n\r\n",
    )
    status, headers, _ = exchange(base, raw)
    assert status == 400
    _assert_gateway_headers(headers)


@pytest.mark.usefixtures("api")  # cleans the tables afterwards
def test_chunked_body_reaches_the_function(
    server: tuple[str, Path], alice: str, token_for: Callable[..., str]
) -> None:
    base, _ = server
    document = json.dumps({"title": "sent in chunks"}).encode()
    chunks = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (document[:7], document[7:])
    )
    raw = request(
        "POST",
        f"/api/{alice}/tasks",
        "Transfer-Encoding: chunked",
        "Content-Type: application/json",
        f"Authorization: Bearer {token_for(alice)}",
        body=chunks + b"0\r\n\r\n",
    )
    status, _, body = exchange(base, raw)
    assert status == 201, body
    assert json.loads(body)["title"] == "sent in chunks"


def test_malformed_chunked_body_is_400(server: tuple[str, Path], alice: str) -> None:
    base, _ = server
    raw = request(
        "POST", f"/api/{alice}/tasks", "Transfer-Encoding: chunked", body=b"zz\r\nabc\r\n0\r\n\r\n"
    )
    status, _, _ = exchange(base, raw)
    assert status == 400


def test_repeated_headers_are_joined_with_commas(
    server: tuple[str, Path], alice: str, token_for: Callable[..., str]
) -> None:
    """API Gateway joins a repeated header's values: two Authorization headers make one value
    that is no token at all (401), not the last one (which alone would be accepted)."""
    base, _ = server
    token = token_for(alice)
    alone = exchange(base, request("GET", f"/api/{alice}/tasks", f"Authorization: Bearer {token}"))
    assert alone[0] == 200
    repeated = request(
        "GET",
        f"/api/{alice}/tasks",
        "Authorization: Bearer not-a-token",
        f"Authorization: Bearer {token}",
    )
    status, headers, _ = exchange(base, repeated)
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (request("GET", "/no/such/route", f"Origin: {ORIGIN}"), 404),
        (request("DELETE", "/health", f"Origin: {ORIGIN}"), 404),
        (
            request("POST", "/api/alice/tasks", f"Origin: {ORIGIN}", "Content-Length: 10485761"),
            413,
        ),
        (
            request(
                "OPTIONS",
                "/api/alice/tasks",
                f"Origin: {ORIGIN}",
                "Access-Control-Request-Method: POST",
            ),
            204,
        ),
    ],
    ids=["404 unknown path", "404 unknown method", "413", "preflight"],
)
def test_gateway_own_answers_carry_cors_and_security_headers(
    server: tuple[str, Path], raw: bytes, expected: int
) -> None:
    status, headers, _ = exchange(server[0], raw)
    assert status == expected
    _assert_gateway_headers(headers)


def test_access_log_has_no_query_string(server: tuple[str, Path]) -> None:
    base, log = server
    secret = "do-not-log-" + str(time.monotonic_ns())
    for raw in (
        request("GET", f"/health?token={secret}"),
        request("GET", f"/no/such/route?access_token={secret}"),
    ):
        exchange(base, raw)
    # A malformed request line: http.server answers it itself (in HTTP/0.9, without a status
    # line) and logs the line it refused.
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(f"GET /health?token={secret} HTTP/1.1 junk\r\n\r\n".encode())
        while connection.recv(65536):
            pass
    deadline = time.monotonic() + 5
    while log.read_text().count("/health") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    text = log.read_text()
    assert "/health" in text
    assert secret not in text


def test_frontend_origin_default_is_not_the_local_api_itself() -> None:
    """The local API listens on DEFAULT_PORT; the default allowed origin is the Next.js dev
    server's, on another port, so a browser app served there can call the API."""
    next_dev_server = "http://localhost:3000"
    policy = read_cors_policy(ROOT / "template.yaml", environ={})
    assert policy.allow_origins == frozenset({next_dev_server})
    assert not next_dev_server.endswith(f":{DEFAULT_PORT}")
    overridden = read_cors_policy(ROOT / "template.yaml", environ={"FRONTEND_ORIGIN": ORIGIN})
    assert overridden.allow_origins == frozenset({ORIGIN})
