"""The verifier, through the real task handlers: both token kinds, each mode of configuration,
the JWKS cache (rotation, rate limit, outages), and every attack the issue lists. Each attack
test would fail if the check it covers were removed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from devserver.mint_token import mint_token
from tests.api_client import ApiClient, Response
from tests.conftest import TEST_SECRET
from tests.jwks_server import JwksServer
from tests.shared.conftest import Clock, Configure, SigningKey, claims_for, new_signing_key
from todo_core import auth, observability
from todo_core.errors import ConfigurationError
from todo_core.settings import WARM_UP_SIGNING_KEY, Settings, load_settings

SetUp = Callable[..., SigningKey]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _hs256_signed_with(key: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """An HS256 token made by hand (PyJWT itself refuses a PEM public key as an HMAC secret)."""
    signing_input = _unsigned(header, claims)
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _list(api: ApiClient, user_id: str, token: str | None, **headers: str) -> Response:
    return api.get(f"/api/{user_id}/tasks", token=token, headers=headers or None)


def _assert_401(response: Response) -> None:
    assert response.status == 401, response.body
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "detail" in response.json()


@pytest.fixture
def jwks_mode(configure_auth: Configure, jwks_server: JwksServer) -> SetUp:
    """Configure JWKS mode against the local endpoint (optionally with the secret too) and
    serve the given keys; return the first key."""

    def set_up(*keys: SigningKey, secret: bool = False, **variables: str) -> SigningKey:
        keys = keys or (new_signing_key(),)
        jwks_server.jwks = {"keys": [key.jwk for key in keys]}
        if secret:
            variables["BETTER_AUTH_SECRET"] = TEST_SECRET
        configure_auth(BETTER_AUTH_URL=jwks_server.base_url, **variables)
        return keys[0]

    return set_up


# ---- accepted tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256", "PS256"])
def test_jwks_token_accepted_for_each_key_type(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str, alg: str
) -> None:
    key = jwks_mode(new_signing_key(alg))
    response = _list(api, alice, key.sign(claims_for(alice, jwks_server.base_url)))
    assert response.status == 200, response.body


def test_rsa_key_without_alg_verifies_rs256_and_ps256(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str
) -> None:
    key = jwks_mode(new_signing_key("RS256", declare_alg=False))
    for alg in ("RS256", "PS256"):
        token = key.sign(claims_for(alice, jwks_server.base_url), alg=alg)
        assert _list(api, alice, token).status == 200


def test_both_modes_accept_hs256_and_jwks_tokens(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str
) -> None:
    key = jwks_mode(secret=True)
    assert _list(api, alice, mint_token(alice, secret=TEST_SECRET)).status == 200
    assert _list(api, alice, key.sign(claims_for(alice, jwks_server.base_url))).status == 200


def test_jwks_fetched_once_per_container(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str
) -> None:
    key = jwks_mode()
    for _ in range(3):
        assert _list(api, alice, key.sign(claims_for(alice, jwks_server.base_url))).status == 200
    assert jwks_server.fetches == 1


def test_expiry_within_leeway_accepted(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str
) -> None:
    key = jwks_mode()
    now = int(time.time())
    claims = claims_for(alice, jwks_server.base_url, iat=now - 900, exp=now - 10)
    assert _list(api, alice, key.sign(claims)).status == 200


@pytest.mark.parametrize(("expired_seconds_ago", "status"), [(20, 200), (45, 401)])
def test_expiry_leeway_is_30_seconds(
    api: ApiClient, jwks_mode: SetUp, alice: str, expired_seconds_ago: int, status: int
) -> None:
    jwks_mode(secret=True)
    now = int(time.time())
    claims = {"sub": alice, "iat": now - 900, "exp": now - expired_seconds_ago}
    assert _list(api, alice, jwt.encode(claims, TEST_SECRET, algorithm="HS256")).status == status


def test_explicit_issuer_and_audience_override_the_url(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str
) -> None:
    key = jwks_mode(BETTER_AUTH_ISSUER="https://auth.example", BETTER_AUTH_AUDIENCE="todo-api")
    claims = claims_for(alice, "https://auth.example", aud=["todo-api", "other"])
    assert _list(api, alice, key.sign(claims)).status == 200


# ---- modes: one kind of token never passes for the other ---------------------------------------


def test_hs256_refused_when_only_jwks_configured(
    api: ApiClient, jwks_mode: SetUp, alice: str
) -> None:
    jwks_mode()
    _assert_401(_list(api, alice, mint_token(alice, secret=TEST_SECRET)))


def test_jwks_token_refused_when_only_secret_configured(
    api: ApiClient, configure_auth: Configure, jwks_server: JwksServer, alice: str
) -> None:
    key = new_signing_key()
    jwks_server.jwks = {"keys": [key.jwk]}
    configure_auth(BETTER_AUTH_SECRET=TEST_SECRET)
    _assert_401(_list(api, alice, key.sign(claims_for(alice, jwks_server.base_url))))
    assert jwks_server.fetches == 0


def test_hs256_still_accepted_with_secret_only(
    api: ApiClient, configure_auth: Configure, alice: str
) -> None:
    configure_auth(BETTER_AUTH_SECRET=TEST_SECRET)
    assert _list(api, alice, mint_token(alice, secret=TEST_SECRET)).status == 200


# ---- attacks ------------------------------------------------------------------------------------


def test_attack_no_authorization_header(api: ApiClient, jwks_mode: SetUp, alice: str) -> None:
    jwks_mode(secret=True)
    response = _list(api, alice, None)
    assert response.status == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_attack_wrong_scheme(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str
) -> None:
    key = jwks_mode(secret=True)
    token = key.sign(claims_for(alice, jwks_server.base_url))
    for authorization in (f"Basic {token}", f"Token {token}", token):
        response = _list(api, alice, None, authorization=authorization)
        assert response.status == 401
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "garbage", ["garbage", "a.b.c", "eyJhbGciOiJFZERTQSJ9", "..", "e30.e30.e30", "\u00e9.x.y"]
)
def test_attack_garbage_token(api: ApiClient, jwks_mode: SetUp, alice: str, garbage: str) -> None:
    jwks_mode(secret=True)
    _assert_401(_list(api, alice, garbage))


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_attack_alg_none(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str, alg: str
) -> None:
    key = jwks_mode(secret=True)
    token = _unsigned({"alg": alg, "kid": key.kid}, claims_for(alice, jwks_server.base_url)) + "."
    _assert_401(_list(api, alice, token))


@pytest.mark.parametrize("secret", [False, True], ids=["jwks-only", "jwks-and-secret"])
@pytest.mark.parametrize("key_bytes", ["raw", "pem", "jwk-json"])
def test_attack_hs256_signed_with_a_jwks_public_key(
    api: ApiClient,
    jwks_mode: SetUp,
    jwks_server: JwksServer,
    alice: str,
    secret: bool,
    key_bytes: str,
) -> None:
    """Algorithm confusion: the public key (known to all) used as an HMAC secret."""
    key = jwks_mode(secret=secret)
    public_key = key.private_key.public_key()
    hmac_key = {
        "raw": public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        "pem": public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk-json": json.dumps(key.jwk).encode(),
    }[key_bytes]
    claims = claims_for(alice, jwks_server.base_url)
    token = _hs256_signed_with(hmac_key, {"alg": "HS256", "kid": key.kid}, claims)
    _assert_401(_list(api, alice, token))


def test_attack_other_issuer(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str
) -> None:
    key = jwks_mode()
    claims = claims_for(alice, jwks_server.base_url, iss="https://evil.example")
    _assert_401(_list(api, alice, key.sign(claims)))


def test_attack_other_audience(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str
) -> None:
    key = jwks_mode()
    claims = claims_for(alice, jwks_server.base_url, aud="https://other-app.example")
    _assert_401(_list(api, alice, key.sign(claims)))


@pytest.mark.parametrize("claim", ["iss", "aud", "exp"])
def test_attack_required_claim_missing(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str, claim: str
) -> None:
    key = jwks_mode()
    claims = claims_for(alice, jwks_server.base_url)
    del claims[claim]
    _assert_401(_list(api, alice, key.sign(claims)))


@pytest.mark.parametrize("kind", ["jwks", "hs256"])
def test_attack_expired_token(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str, kind: str
) -> None:
    key = jwks_mode(secret=True)
    now = int(time.time())
    if kind == "jwks":
        claims = claims_for(alice, jwks_server.base_url, iat=now - 1000, exp=now - 120)
        token = key.sign(claims)
    else:
        token = mint_token(alice, secret=TEST_SECRET, minutes=-2)
    response = _list(api, alice, token)
    _assert_401(response)
    assert response.json()["detail"] == "Token has expired"


def test_attack_hs256_token_without_expiry(api: ApiClient, jwks_mode: SetUp, alice: str) -> None:
    jwks_mode(secret=True)
    token = jwt.encode({"sub": alice, "iat": int(time.time())}, TEST_SECRET, algorithm="HS256")
    _assert_401(_list(api, alice, token))


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_attack_token_not_yet_valid(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str, claim: str
) -> None:
    key = jwks_mode()
    claims = claims_for(alice, jwks_server.base_url, **{claim: int(time.time()) + 600})
    _assert_401(_list(api, alice, key.sign(claims)))


def test_attack_unknown_kid_after_refresh(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, clock: Clock, alice: str
) -> None:
    known = jwks_mode()
    stranger = new_signing_key()  # a well-formed key the JWKS does not publish
    assert _list(api, alice, known.sign(claims_for(alice, jwks_server.base_url))).status == 200
    clock.advance(60)
    response = _list(api, alice, stranger.sign(claims_for(alice, jwks_server.base_url)))
    _assert_401(response)
    assert jwks_server.fetches == 2  # the unknown kid did trigger a refresh, and still failed


def test_attack_unknown_kids_cannot_flood_the_jwks_endpoint(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, clock: Clock, alice: str
) -> None:
    jwks_mode()
    for _ in range(5):
        stranger = new_signing_key()
        _assert_401(_list(api, alice, stranger.sign(claims_for(alice, jwks_server.base_url))))
        clock.advance(1)
    assert jwks_server.fetches == 1  # the first fetch; refreshes wait BETTER_AUTH_JWKS_REFRESH


def test_attack_kid_missing(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, clock: Clock, alice: str
) -> None:
    key = jwks_mode()
    assert _list(api, alice, key.sign(claims_for(alice, jwks_server.base_url))).status == 200
    clock.advance(60)
    claims = claims_for(alice, jwks_server.base_url)
    token = key.sign(claims, kid=None)
    response = _list(api, alice, token)
    _assert_401(response)
    assert response.json()["detail"] == "Token has no key id"
    assert jwks_server.fetches == 1  # refused before any key lookup


@pytest.fixture(params=["jwks", "hs256"])
def bobs_token(
    request: pytest.FixtureRequest, jwks_mode: SetUp, jwks_server: JwksServer, bob: str
) -> str:
    """A valid token of bob's, of either kind (both are accepted in this mode)."""
    key = jwks_mode(secret=True)
    if request.param == "jwks":
        return key.sign(claims_for(bob, jwks_server.base_url))
    return mint_token(bob, secret=TEST_SECRET)


def test_attack_tampered_payload(api: ApiClient, alice: str, bobs_token: str) -> None:
    header, payload, signature = bobs_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = alice
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    _assert_401(_list(api, alice, forged))


def test_attack_valid_token_for_another_user(
    api: ApiClient, alice: str, bob: str, bobs_token: str
) -> None:
    assert _list(api, bob, bobs_token).status == 200
    assert _list(api, alice, bobs_token).status == 403


@pytest.mark.parametrize("sub", [None, "", 42, ["alice"], {"id": "alice"}])
@pytest.mark.parametrize("kind", ["jwks", "hs256"])
def test_attack_sub_missing_or_not_a_string(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, kind: str, sub: Any
) -> None:
    key = jwks_mode(secret=True)
    claims = claims_for("placeholder", jwks_server.base_url, sub=sub)  # None: no sub at all
    token = (
        key.sign(claims)
        if kind == "jwks"
        else _hs256_signed_with(TEST_SECRET.encode(), {"alg": "HS256", "typ": "JWT"}, claims)
    )
    # The path names the user the token would claim to be, when that is expressible.
    _assert_401(_list(api, sub if isinstance(sub, str) and sub else "placeholder", token))


def test_attack_key_alg_narrows_its_type(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str
) -> None:
    """An RSA key published for RS256 does not verify PS256 with the same key pair."""
    key = jwks_mode(new_signing_key("RS256"))
    token = key.sign(claims_for(alice, jwks_server.base_url), alg="PS256")
    response = _list(api, alice, token)
    _assert_401(response)
    assert response.json()["detail"] == "Token algorithm not accepted for its key"


@pytest.mark.parametrize("alg", ["HS384", "HS512", "RS1", "ES256K", "EdDSA "])
def test_attack_other_algorithms_refused(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str, alg: str
) -> None:
    key = jwks_mode(secret=True)
    token = _unsigned({"alg": alg, "kid": key.kid}, claims_for(alice, jwks_server.base_url))
    _assert_401(_list(api, alice, token + "." + _b64(b"x" * 64)))


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_attack_other_hmac_algorithms_signed_with_the_secret_refused(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str, alg: str
) -> None:
    """Only HS256 is checked against the secret: a correctly signed HS384 or HS512 token is
    refused, so the token's header never chooses the HMAC family's algorithm."""
    jwks_mode(secret=True)
    token = jwt.encode(claims_for(alice, jwks_server.base_url), TEST_SECRET, algorithm=alg)
    response = _list(api, alice, token)
    _assert_401(response)
    assert response.json()["detail"] == "Token algorithm not accepted"


# ---- the JWKS cache: rotation, outages ----------------------------------------------------------


def test_key_rotation_picked_up_after_rate_limited_refresh(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, clock: Clock, alice: str
) -> None:
    old = jwks_mode()
    assert _list(api, alice, old.sign(claims_for(alice, jwks_server.base_url))).status == 200
    new = new_signing_key()
    jwks_server.jwks = {"keys": [new.jwk]}  # the frontend rotated and dropped the old key
    new_token = new.sign(claims_for(alice, jwks_server.base_url))
    clock.advance(1)
    _assert_401(_list(api, alice, new_token))  # within the refresh interval: no fetch yet
    assert jwks_server.fetches == 1
    clock.advance(10)
    assert _list(api, alice, new_token).status == 200  # no restart needed
    assert jwks_server.fetches == 2
    _assert_401(_list(api, alice, old.sign(claims_for(alice, jwks_server.base_url))))


def test_jwks_refetched_after_max_age_and_kept_if_that_fails(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, clock: Clock, alice: str
) -> None:
    key = jwks_mode(BETTER_AUTH_JWKS_CACHE_SECONDS="300")
    token = key.sign(claims_for(alice, jwks_server.base_url))
    assert _list(api, alice, token).status == 200
    clock.advance(301)
    jwks_server.behaviour = "http_error"
    assert _list(api, alice, token).status == 200  # stale keys beat logging everyone out
    assert jwks_server.fetches == 2
    jwks_server.behaviour = "serve"
    clock.advance(11)
    assert _list(api, alice, token).status == 200
    assert jwks_server.fetches == 3


@pytest.mark.parametrize("behaviour", ["http_error", "garbage", "redirect", "huge", "hang"])
def test_jwks_unavailable_is_503_quickly(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str, behaviour: str
) -> None:
    key = jwks_mode(BETTER_AUTH_JWKS_TIMEOUT_SECONDS="0.5")
    jwks_server.behaviour = behaviour  # type: ignore[assignment]
    started = time.monotonic()
    response = _list(api, alice, key.sign(claims_for(alice, jwks_server.base_url)))
    assert time.monotonic() - started < 2
    assert response.status == 503, response.body
    assert response.json() == {"detail": "Signing keys unavailable, retry shortly"}
    assert response.headers["retry-after"] == "1"


def test_jwks_unreachable_is_503_and_recovers(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str
) -> None:
    key = jwks_mode()
    token = key.sign(claims_for(alice, jwks_server.base_url))
    jwks_server.behaviour = "http_error"
    assert _list(api, alice, token).status == 503
    jwks_server.behaviour = "serve"
    assert _list(api, alice, token).status == 200  # no keys yet: the next request tries again


def test_jwks_fetch_failure_is_one_structured_warning_without_the_token(
    api: ApiClient,
    jwks_mode: SetUp,
    jwks_server: JwksServer,
    alice: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = jwks_mode()
    token = key.sign(claims_for(alice, jwks_server.base_url))
    jwks_server.behaviour = "http_error"
    assert _list(api, alice, token).status == 503
    warnings = [record for record in caplog.records if record.levelname == "WARNING"]
    # Through the functions' structured logger (a plain logger would reach Lambda's log group as
    # unstructured text), so it is one JSON line with the request's correlation id.
    assert [record.name for record in warnings] == [observability.logger.name]
    formatter = observability.logger.registered_formatter
    lines = [json.loads(formatter.format(record)) for record in warnings]
    assert [(line["message"], line["service"]) for line in lines] == [
        ("JWKS fetch failed: HTTPError", "todo-api")
    ]
    assert lines[0]["correlation_id"]
    assert token not in caplog.text


def test_jwks_refused_port_is_503(api: ApiClient, configure_auth: Configure, alice: str) -> None:
    configure_auth(BETTER_AUTH_URL="http://127.0.0.1:9")  # discard port: connection refused
    key = new_signing_key()
    response = _list(api, alice, key.sign(claims_for(alice, "http://127.0.0.1:9")))
    assert response.status == 503
    # HS256 never needs the JWKS: it is refused (401), not made to wait on it.
    _assert_401(_list(api, alice, mint_token(alice, secret=TEST_SECRET)))


def test_hs256_unaffected_by_jwks_outage(
    api: ApiClient, jwks_mode: SetUp, jwks_server: JwksServer, alice: str
) -> None:
    jwks_mode(secret=True)
    jwks_server.behaviour = "http_error"
    assert _list(api, alice, mint_token(alice, secret=TEST_SECRET)).status == 200
    assert jwks_server.fetches == 0


# ---- parse_jwks ---------------------------------------------------------------------------------


def test_parse_jwks_keeps_only_usable_signing_keys() -> None:
    good = new_signing_key()
    rsa = new_signing_key("RS256", declare_alg=False)
    document = {
        "keys": [
            good.jwk,
            rsa.jwk,
            {"kty": "oct", "k": _b64(b"s" * 32), "kid": "hmac", "alg": "HS256"},
            {**new_signing_key().jwk, "kid": None},
            {**new_signing_key().jwk, "use": "enc", "kid": "enc"},
            {**new_signing_key().jwk, "alg": "ES256", "kid": "mismatch"},
            {**new_signing_key("ES256").jwk, "crv": "P-999", "kid": "bad-curve"},
            "not a key",
        ]
    }
    keys = auth.parse_jwks(document)
    assert set(keys) == {good.kid, rsa.kid}
    assert keys[good.kid].algorithms == {"EdDSA"}
    assert {"RS256", "PS256"} <= keys[rsa.kid].algorithms


@pytest.mark.parametrize("document", [None, [], {}, {"keys": {}}, {"keys": []}, {"keys": [{}]}])
def test_parse_jwks_refuses_documents_without_usable_keys(document: object) -> None:
    with pytest.raises(ValueError, match="JWKS"):
        auth.parse_jwks(document)


# ---- configuration ------------------------------------------------------------------------------


def settings_from(environ: dict[str, str]) -> Settings:
    """The settings of ``environ`` plus a database URL (required, and beside the point here)."""
    return load_settings({"DATABASE_URL": "postgresql://todo@db.invalid/todo", **environ})


def test_settings_derive_jwks_url_issuer_and_audience_from_better_auth_url() -> None:
    settings = settings_from({"BETTER_AUTH_URL": "https://app.example.com/"})
    assert settings.better_auth_jwks_url == "https://app.example.com/api/auth/jwks"
    assert settings.better_auth_issuer == "https://app.example.com"
    assert settings.better_auth_audience == "https://app.example.com"
    assert settings.better_auth_secret is None  # JWKS only: HS256 tokens are refused


def test_settings_overrides_win() -> None:
    settings = settings_from(
        {
            "BETTER_AUTH_URL": "https://app.example.com",
            "BETTER_AUTH_JWKS_URL": "https://keys.example.com/jwks.json",
            "BETTER_AUTH_ISSUER": "https://issuer.example",
            "BETTER_AUTH_AUDIENCE": "todo-api",
            "BETTER_AUTH_JWKS_TIMEOUT_SECONDS": "1.5",
        }
    )
    assert settings.better_auth_jwks_url == "https://keys.example.com/jwks.json"
    assert settings.better_auth_issuer == "https://issuer.example"
    assert settings.better_auth_audience == "todo-api"
    assert settings.better_auth_jwks_timeout_seconds == 1.5


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"BETTER_AUTH_URL": "app.example.com"}, "BETTER_AUTH_URL"),
        ({"BETTER_AUTH_SECRET": WARM_UP_SIGNING_KEY}, "BETTER_AUTH_SECRET is the warm-up's"),
        ({"BETTER_AUTH_URL": "ftp://app.example.com"}, "BETTER_AUTH_URL"),
        ({"BETTER_AUTH_URL": "http://app.example.com"}, "BETTER_AUTH_URL"),
        ({"BETTER_AUTH_JWKS_URL": "file:///etc/passwd"}, "BETTER_AUTH_JWKS_URL"),
        ({"BETTER_AUTH_JWKS_URL": "https://k.example/jwks"}, "BETTER_AUTH_ISSUER"),
        (
            {"BETTER_AUTH_JWKS_URL": "https://k.example/jwks", "BETTER_AUTH_ISSUER": "x"},
            "BETTER_AUTH_AUDIENCE",
        ),
        ({"BETTER_AUTH_ISSUER": "https://issuer.example"}, "BETTER_AUTH_ISSUER"),
        (
            {"BETTER_AUTH_URL": "https://a.example", "BETTER_AUTH_JWKS_TIMEOUT_SECONDS": "0"},
            "BETTER_AUTH_JWKS_TIMEOUT_SECONDS",
        ),
        (
            {"BETTER_AUTH_URL": "https://a.example", "BETTER_AUTH_JWKS_REFRESH_SECONDS": "nan"},
            "BETTER_AUTH_JWKS_REFRESH_SECONDS",
        ),
    ],
)
def test_settings_fail_fast_naming_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        settings_from(environ)


def test_settings_allow_plain_http_on_localhost_only() -> None:
    settings = settings_from({"BETTER_AUTH_URL": "http://localhost:3000"})
    assert settings.better_auth_jwks_url == "http://localhost:3000/api/auth/jwks"


def test_settings_without_database_url_name_it() -> None:
    # `make run` sets it (its embedded PostgreSQL) before anything reads the settings.
    with pytest.raises(ConfigurationError, match="DATABASE_URL is not set"):
        load_settings({"BETTER_AUTH_SECRET": "x" * 32})
