"""Interoperability with the real thing: tokens issued by the `better-auth` npm package's jwt()
plugin (pinned in infra/better-auth/package-lock.json), verified through the real handlers
against that instance's own JWKS, served on 127.0.0.1 as the frontend would serve it."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.api_client import ApiClient
from tests.jwks_server import JwksServer
from tests.shared.conftest import Clock, Configure, IssueTokens

BETTER_AUTH_VERSION = "1.7.25"
ALGORITHMS = ["EdDSA", "ES256", "ES512", "RS256", "PS256"]


def _serve(issued: dict[str, Any], jwks_server: JwksServer, configure_auth: Configure) -> None:
    """Serve the instance's JWKS and point the API at it; iss/aud are the instance's base URL."""
    jwks_server.jwks = issued["jwks"]
    configure_auth(
        BETTER_AUTH_JWKS_URL=jwks_server.url,
        BETTER_AUTH_ISSUER=issued["issuer"],
        BETTER_AUTH_AUDIENCE=issued["audience"],
    )


def _header(token: str) -> dict[str, Any]:
    segment = token.split(".", maxsplit=1)[0]
    header: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return header


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_better_auth_token_opens_its_users_routes_only(
    api: ApiClient,
    better_auth: IssueTokens,
    jwks_server: JwksServer,
    configure_auth: Configure,
    alg: str,
) -> None:
    issued = better_auth("--alg", alg, "--count", "2")
    assert issued["better_auth_version"] == BETTER_AUTH_VERSION
    assert issued["alg"] == alg
    _serve(issued, jwks_server, configure_auth)
    owner, other = issued["users"]
    assert _header(owner["token"]) == {"alg": alg, "kid": issued["kid"]}

    created = api.post(
        f"/api/{owner['user_id']}/tasks", token=owner["token"], json_body={"title": "from BA"}
    )
    assert created.status == 201, created.body
    assert created.json()["user_id"] == owner["user_id"]
    listed = api.get(f"/api/{owner['user_id']}/tasks", token=owner["token"])
    assert [task["title"] for task in listed.json()] == ["from BA"]

    # The same, valid token on another user's path: 403, and nothing of theirs is reachable.
    assert api.get(f"/api/{other['user_id']}/tasks", token=owner["token"]).status == 403
    task_path = f"/api/{other['user_id']}/tasks/{created.json()['id']}"
    assert api.get(task_path, token=other["token"]).status == 404
    assert jwks_server.fetches == 1


def test_better_auth_session_header_token_accepted(
    api: ApiClient, better_auth: IssueTokens, jwks_server: JwksServer, configure_auth: Configure
) -> None:
    """The token the frontend gets from `set-auth-jwt` on get-session works the same."""
    issued = better_auth("--via", "session")
    _serve(issued, jwks_server, configure_auth)
    assert api.get(f"/api/{issued['user_id']}/tasks", token=issued["token"]).status == 200


def test_better_auth_url_alone_configures_everything(
    api: ApiClient, better_auth: IssueTokens, jwks_server: JwksServer, configure_auth: Configure
) -> None:
    """With BETTER_AUTH_URL = the frontend's base URL, Better Auth's iss/aud match as derived."""
    issued = better_auth("--base-url", "http://127.0.0.1:3999")
    jwks_server.jwks = issued["jwks"]
    configure_auth(BETTER_AUTH_URL="http://127.0.0.1:3999", BETTER_AUTH_JWKS_URL=jwks_server.url)
    assert api.get(f"/api/{issued['user_id']}/tasks", token=issued["token"]).status == 200


def test_better_auth_expired_token_refused(
    api: ApiClient, better_auth: IssueTokens, jwks_server: JwksServer, configure_auth: Configure
) -> None:
    issued = better_auth("--expires-in=-120")
    _serve(issued, jwks_server, configure_auth)
    response = api.get(f"/api/{issued['user_id']}/tasks", token=issued["token"])
    assert response.status == 401
    assert response.json() == {"detail": "Token has expired"}


def test_better_auth_token_for_another_audience_refused(
    api: ApiClient, better_auth: IssueTokens, jwks_server: JwksServer, configure_auth: Configure
) -> None:
    ours = better_auth()
    theirs = better_auth("--audience", "https://another-api.example")
    jwks_server.jwks = {"keys": ours["jwks"]["keys"] + theirs["jwks"]["keys"]}
    configure_auth(
        BETTER_AUTH_JWKS_URL=jwks_server.url,
        BETTER_AUTH_ISSUER=ours["issuer"],
        BETTER_AUTH_AUDIENCE=ours["audience"],
    )
    assert api.get(f"/api/{theirs['user_id']}/tasks", token=theirs["token"]).status == 401
    assert api.get(f"/api/{ours['user_id']}/tasks", token=ours["token"]).status == 200


def test_better_auth_token_refused_when_only_the_secret_is_configured(
    api: ApiClient, better_auth: IssueTokens, configure_auth: Configure
) -> None:
    issued = better_auth()
    configure_auth(BETTER_AUTH_SECRET="x" * 48)
    assert api.get(f"/api/{issued['user_id']}/tasks", token=issued["token"]).status == 401


def test_better_auth_key_rotation_without_restart(
    api: ApiClient,
    better_auth: IssueTokens,
    jwks_server: JwksServer,
    configure_auth: Configure,
    clock: Clock,
) -> None:
    """A new key pair (new kid) replaces the old one at the frontend: its tokens are accepted
    once the rate-limited refresh allows a fetch; the old key's tokens stop working."""
    before = better_auth("--alg", "EdDSA")
    after = better_auth("--alg", "EdDSA", "--via", "session")
    assert before["kid"] != after["kid"]
    _serve(before, jwks_server, configure_auth)
    assert api.get(f"/api/{before['user_id']}/tasks", token=before["token"]).status == 200

    jwks_server.jwks = after["jwks"]
    clock.advance(11)  # past BETTER_AUTH_JWKS_REFRESH_SECONDS (10)
    assert api.get(f"/api/{after['user_id']}/tasks", token=after["token"]).status == 200
    assert jwks_server.fetches == 2
    assert api.get(f"/api/{before['user_id']}/tasks", token=before["token"]).status == 401
