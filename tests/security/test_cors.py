"""CORS: only the configured frontend origin may call the API from a browser."""

from __future__ import annotations

from pathlib import Path
from urllib.request import Request, urlopen

from devserver.cors import read_cors_policy
from devserver.template import load_template
from tests.devserver_process import running_server

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = "https://app.example.com"


def test_cors_template_allows_exactly_the_frontend_origin_parameter() -> None:
    api = load_template(ROOT / "template.yaml")["Resources"]["HttpApi"]["Properties"]
    cors = api["CorsConfiguration"]
    assert cors["AllowOrigins"] == [{"Ref": "FrontendOrigin"}]
    assert "AllowCredentials" not in cors  # bearer tokens, no cookies
    assert {"authorization", "content-type", "idempotency-key"} <= set(cors["AllowHeaders"])


def test_cors_policy_takes_the_origin_from_the_environment() -> None:
    policy = read_cors_policy(ROOT / "template.yaml", {"FRONTEND_ORIGIN": FRONTEND})
    assert policy.allow_origins == {FRONTEND}
    assert policy.response_headers("https://evil.example.com") == {}
    assert policy.response_headers(FRONTEND)["access-control-allow-origin"] == FRONTEND


def _preflight(base: str, origin: str) -> dict[str, str]:
    request = Request(  # noqa: S310  (loopback only)
        f"{base}/api/alice/tasks",
        method="OPTIONS",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    with urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 204
        return {k.lower(): v for k, v in response.headers.items()}


def _get_health(base: str, origin: str) -> dict[str, str]:
    request = Request(f"{base}/health", headers={"Origin": origin})  # noqa: S310
    with urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200
        return {k.lower(): v for k, v in response.headers.items()}


def test_cors_local_server_answers_only_the_configured_origin(
    app_environment: dict[str, str], tmp_path: Path
) -> None:
    environment = {**app_environment, "FRONTEND_ORIGIN": FRONTEND}
    with running_server(environment, tmp_path, "--no-migrate") as base:
        allowed = _preflight(base, FRONTEND)
        refused = _preflight(base, "https://evil.example.com")
        allowed_get = _get_health(base, FRONTEND)
        refused_get = _get_health(base, "https://evil.example.com")
    assert allowed["access-control-allow-origin"] == FRONTEND
    assert "POST" in allowed["access-control-allow-methods"]
    assert "authorization" in allowed["access-control-allow-headers"]
    assert "access-control-allow-origin" not in refused
    assert allowed_get["access-control-allow-origin"] == FRONTEND
    assert "access-control-allow-origin" not in refused_get
    assert allowed_get["x-content-type-options"] == "nosniff"
