"""The local server end to end: a real process serving template.yaml over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import Message
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from devserver.local_defaults import LOCAL_DEV_SECRET
from devserver.mint_token import mint_token
from devserver.template import read_routes

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running_server(env: dict[str, str], cwd: Path, *args: str) -> Iterator[str]:
    log = cwd / "devserver.log"
    environment = {**os.environ, **env, "PYTHONPATH": f"{ROOT / 'shared'}:{ROOT / 'infra'}"}
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "devserver", "--port", "0", *args],
            cwd=cwd,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            assert banner.startswith("Todo API on http://"), log.read_text()
            yield banner.split()[3]
        finally:
            process.terminate()
            process.communicate(timeout=10)


def _lower(headers: Message) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def call(
    method: str, url: str, *, token: str | None = None, body: object = None
) -> tuple[int, dict[str, str], object]:
    data = json.dumps(body).encode() if body is not None else None
    request = Request(url, data=data, method=method)  # noqa: S310  (loopback only)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urlopen(request, timeout=10) as response:  # noqa: S310
            raw = response.read()
            return response.status, _lower(response.headers), json.loads(raw) if raw else None
    except HTTPError as error:
        raw = error.read()
        return error.code, _lower(error.headers), json.loads(raw) if raw else None


def _curl_session(base: str, token: str, user: str) -> None:
    status, _, task = call("POST", f"{base}/api/{user}/tasks", token=token, body={"title": "Milk"})
    assert status == 201
    assert isinstance(task, dict)
    status, _, tasks = call("GET", f"{base}/api/{user}/tasks", token=token)
    assert (status, [t["title"] for t in tasks]) == (200, ["Milk"])  # type: ignore[union-attr]
    status, _, done = call("PATCH", f"{base}/api/{user}/tasks/{task['id']}/complete", token=token)
    assert (status, done["completed"]) == (200, True)  # type: ignore[index]
    status, _, _ = call("DELETE", f"{base}/api/{user}/tasks/{task['id']}", token=token)
    assert status == 204
    status, _, tasks = call("GET", f"{base}/api/{user}/tasks", token=token)
    assert (status, tasks) == (200, [])


def test_devserver_serves_the_readme_session_on_postgres(
    app_environment: dict[str, str], tmp_path: Path, alice: str, token_for: Callable[..., str]
) -> None:
    with running_server(app_environment, tmp_path, "--no-migrate") as base:
        _curl_session(base, token_for(alice), alice)
        status, headers, _ = call("GET", f"{base}/api/{alice}/tasks")
        assert status == 401
        assert headers["www-authenticate"] == "Bearer"


def test_devserver_default_embedded_sqlite_needs_no_setup(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "", "BETTER_AUTH_SECRET": ""}
    with running_server(env, tmp_path) as base:
        assert call("GET", f"{base}/health")[0] == 200
        _curl_session(base, mint_token("alice", secret=LOCAL_DEV_SECRET), "alice")
    assert (tmp_path / ".local" / "todo.sqlite3").is_file()


def test_devserver_openapi_documents_every_template_route(
    app_environment: dict[str, str], tmp_path: Path
) -> None:
    with running_server(app_environment, tmp_path, "--no-migrate") as base:
        status, _, spec = call("GET", f"{base}/openapi.json")
        docs_status = urlopen(f"{base}/docs", timeout=10).status  # noqa: S310
    assert status == 200
    assert docs_status == 200
    assert isinstance(spec, dict)
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    declared = {(r.method, r.path) for r in read_routes(ROOT / "template.yaml")}
    assert documented == declared
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_devserver_unknown_route_and_method_are_api_gateway_404s(
    app_environment: dict[str, str], tmp_path: Path
) -> None:
    with running_server(app_environment, tmp_path, "--no-migrate") as base:
        unknown_path = call("GET", f"{base}/nope")
        wrong_method = call("POST", f"{base}/health")
    assert (unknown_path[0], unknown_path[2]) == (404, {"message": "Not Found"})
    assert (wrong_method[0], wrong_method[2]) == (404, {"message": "Not Found"})
