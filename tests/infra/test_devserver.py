"""The local server end to end: a real process serving template.yaml over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.request import urlopen

from devserver.template import read_routes
from tests.devserver_process import call, readme_chat_session, readme_task_session, running_server

ROOT = Path(__file__).resolve().parents[2]


def test_devserver_serves_the_readme_session_on_postgres(
    app_environment: dict[str, str], tmp_path: Path, alice: str, token_for: Callable[..., str]
) -> None:
    with running_server(app_environment, tmp_path, "--no-migrate") as base:
        readme_task_session(base, token_for(alice), alice)
        readme_chat_session(base, token_for(alice), alice)
        status, headers, _ = call("GET", f"{base}/api/{alice}/tasks")
        assert status == 401
        assert headers["www-authenticate"] == "Bearer"


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
