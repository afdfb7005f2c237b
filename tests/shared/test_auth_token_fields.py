"""Every field of a token's header and claims, with every JSON type, on every authenticated route
of template.yaml, in both modes (HS256 signed with the secret; a JWKS key): each token is refused
(401 with a Bearer challenge), refused as another user's (403), or accepted; never a 5xx.

The tokens are correctly signed: only the field under test is odd, so every answer comes from the
verifier's handling of that field, not from a bad signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from devserver.template import Route, read_routes
from tests.api_client import ApiClient
from tests.conftest import TEST_SECRET
from tests.jwks_server import JwksServer
from tests.shared.conftest import Configure, SigningKey, claims_for, new_signing_key

ROOT = Path(__file__).resolve().parents[2]
ROUTES = [r for r in read_routes(ROOT / "template.yaml") if "{user_id}" in r.path]

REFUSED, OTHER_USER, ACCEPTED = "refused (401)", "other user (403)", "accepted"

# One value of each JSON type (and the numbers that matter for time claims).
JSON_TYPES: dict[str, Any] = {
    "array": [{"nested": 1}],
    "object": {"alg": "HS256"},
    "true": True,
    "false": False,
    "null": None,
    "string": "something-else",
    "empty string": "",
    "integer": 7,
    "float": 1.5,
    "huge integer": 10**400,
    "negative": -1,
    # Not JSON, but Python's json module (PyJWT's parser) reads them as floats.
    "NaN": float("nan"),
    "Infinity": float("inf"),
}
HEADER_FIELDS = ["alg", "kid", "typ", "crit", "cty", "jku", "x5u", "x5c", "jwk", "zip", "b64"]
CLAIM_FIELDS = ["sub", "exp", "nbf", "iat", "iss", "aud", "jti"]

STRINGS = frozenset({"string", "empty string"})
EVERY_TYPE = frozenset(JSON_TYPES)
NOTHING: frozenset[str] = frozenset()


def accepted_types(mode: str, where: str, field: str) -> frozenset[str]:
    """The JSON types of ``field`` with which an otherwise valid token is still accepted."""
    hs256 = mode == "hs256"
    if where == "header":
        return {
            "alg": NOTHING,  # only the exact algorithm is accepted, never another value
            "kid": STRINGS if hs256 else NOTHING,  # JWKS: a string names an unknown key
            "typ": STRINGS,  # issuers differ (JWT, at+jwt): any string, no other type
            "crit": NOTHING,  # no extension is understood, so any crit is refused
            # RFC 7797: false means an unencoded payload was signed; this one was not.
            "b64": EVERY_TYPE - {"false"},
        }.get(field, EVERY_TYPE)  # never read (jku, x5u, x5c, jwk: no key from the token)
    return {
        "sub": NOTHING,  # a string is another user's (403), anything else refused
        # NumericDate: a number, not a boolean. 7, 1.5, -1 are in 1970: expired for exp, long
        # valid for nbf and iat; 10**400 is forever for exp, the future for nbf and iat.
        "exp": frozenset({"huge integer"}),
        "nbf": frozenset({"integer", "float", "negative"}),
        "iat": frozenset({"integer", "float", "negative"}),
        # HS256 tokens carry no issuer or audience the API checks, but one present must be a
        # string; a JWKS token's must equal the configured one.
        "iss": STRINGS if hs256 else NOTHING,
        "aud": STRINGS if hs256 else NOTHING,
        "jti": STRINGS,
    }[field]


def expected_outcome(mode: str, where: str, field: str, type_name: str) -> str:
    """What the verifier answers for ``field`` set to a value of ``type_name``."""
    if (where, field, type_name) == ("claims", "sub", "string"):
        return OTHER_USER
    return ACCEPTED if type_name in accepted_types(mode, where, field) else REFUSED


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(document: dict[str, Any]) -> str:
    # json.dumps writes 10**400 as digits, as any JSON producer would.
    return _b64(json.dumps(document).encode())


def hs256_token(header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    signature = hmac.new(TEST_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def jwks_token(key: SigningKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    # By hand, not with PyJWT's encode: it would refuse or rewrite odd header values.
    assert isinstance(key.private_key, ed25519.Ed25519PrivateKey)
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    return f"{signing_input}.{_b64(key.private_key.sign(signing_input.encode()))}"


Case = tuple[str, str, str]
CASES: list[Case] = [
    (where, field, type_name)
    for where, fields in (("header", HEADER_FIELDS), ("claims", CLAIM_FIELDS))
    for field in fields
    for type_name in JSON_TYPES
]


@pytest.fixture
def seeded(
    alice: str, make_task: Callable[..., dict[str, Any]], send_chat: Callable[..., Any]
) -> dict[str, str]:
    task = make_task(alice, "keep me")
    conversation = send_chat(alice, "hello").json()["conversation_id"]
    return {"user_id": alice, "task_id": str(task["id"]), "conversation_id": str(conversation)}


@pytest.fixture
def jwks_key(
    seeded: dict[str, str], configure_auth: Configure, jwks_server: JwksServer
) -> SigningKey:
    """JWKS mode only (HS256 refused), once the data is seeded with HS256 tokens."""
    key = new_signing_key("EdDSA")
    jwks_server.jwks = {"keys": [key.jwk]}
    configure_auth(BETTER_AUTH_URL=jwks_server.base_url)
    return key


def _body_for(route: Route) -> Any:
    if route.method == "POST" and route.path.endswith("/chat"):
        return {"message": "list my tasks"}
    if route.method in ("POST", "PUT"):
        return {"title": "from a token test"}
    return None


def _run_matrix(
    api: ApiClient,
    seeded: dict[str, str],
    mode: str,
    make_token: Callable[[dict[str, Any], dict[str, Any]], str],
    base_header: dict[str, Any],
    base_claims: dict[str, Any],
) -> int:
    wrong: list[str] = []
    sent = 0
    for number, (where, field, type_name) in enumerate(CASES):
        header, claims = dict(base_header), dict(base_claims)
        (header if where == "header" else claims)[field] = JSON_TYPES[type_name]
        token = make_token(header, claims)
        expected = expected_outcome(mode, where, field, type_name)
        # A refused token goes to every route (the check runs before anything is read, and a
        # crash there was a 500 on all of them); an accepted one to the next route in turn, as
        # what it does then is the route's own business, tested elsewhere.
        routes = ROUTES if expected != ACCEPTED else [ROUTES[number % len(ROUTES)]]
        for route in routes:
            path = route.path.format(**{n: seeded[n] for n in re.findall(r"\{(\w+)\}", route.path)})
            response = api.request(route.method, path, token=token, json_body=_body_for(route))
            sent += 1
            if response.status == 401:
                got = REFUSED
                assert response.headers["www-authenticate"].startswith("Bearer"), response.headers
                assert isinstance(response.json()["detail"], str)
            elif response.status == 403:
                got = OTHER_USER
                assert isinstance(response.json()["detail"], str)
            elif response.status < 500:
                got = ACCEPTED
            else:
                got = f"{response.status} {response.body[:200]!r}"
            if got != expected:
                wrong.append(f"{route.route_key} {where}.{field}={type_name}: {got} != {expected}")
    assert not wrong, "\n".join(wrong[:40]) + f"\n({len(wrong)} wrong of {sent})"
    return sent


def test_every_header_field_and_claim_of_every_type_hs256(
    api: ApiClient, seeded: dict[str, str]
) -> None:
    now = int(time.time())
    sent = _run_matrix(
        api,
        seeded,
        "hs256",
        hs256_token,
        {"alg": "HS256", "typ": "JWT"},
        {"sub": seeded["user_id"], "iat": now, "exp": now + 600},
    )
    assert sent > len(CASES) * 5


def test_every_header_field_and_claim_of_every_type_jwks(
    api: ApiClient, seeded: dict[str, str], jwks_key: SigningKey, jwks_server: JwksServer
) -> None:
    sent = _run_matrix(
        api,
        seeded,
        "jwks",
        lambda header, claims: jwks_token(jwks_key, header, claims),
        {"alg": "EdDSA", "kid": jwks_key.kid, "typ": "JWT"},
        claims_for(seeded["user_id"], jwks_server.base_url),
    )
    assert sent > len(CASES) * 5
