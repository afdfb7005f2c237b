"""A JWKS whose entries carry odd JSON types. A key that cannot be used is left out (the
others still verify their tokens); a document that is not a usable JWKS is a 503 like any other
fetch failure, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api_client import ApiClient
from tests.jwks_server import JwksServer
from tests.shared.conftest import Configure, claims_for, new_signing_key

JSON_TYPES: dict[str, Any] = {
    "array": ["EdDSA"],
    "object": {"alg": "EdDSA"},
    "true": True,
    "null": None,
    "empty string": "",
    "integer": 7,
    "huge integer": 10**400,
    "float": 1.5,
    "NaN": float("nan"),
}
KEY_FIELDS = ["kty", "crv", "kid", "alg", "use", "x", "key_ops", "d"]


@pytest.mark.parametrize("field", KEY_FIELDS)
def test_jwks_odd_key_is_left_out_and_the_good_key_still_verifies(
    api: ApiClient,
    configure_auth: Configure,
    jwks_server: JwksServer,
    alice: str,
    field: str,
) -> None:
    good = new_signing_key()
    odd_keys = [
        {**new_signing_key().jwk, "kid": f"odd-{name}", field: value}
        for name, value in JSON_TYPES.items()
        if field != "kid"
    ] or [{**new_signing_key().jwk, "kid": value} for value in JSON_TYPES.values()]
    # Each odd key alone next to the good one, then all of them together.
    for keys in [*([odd] for odd in odd_keys), odd_keys]:
        jwks_server.jwks = {"keys": [*keys, good.jwk]}
        configure_auth(BETTER_AUTH_URL=jwks_server.base_url)
        token = good.sign(claims_for(alice, jwks_server.base_url))
        response = api.get(f"/api/{alice}/tasks", token=token)
        assert response.status == 200, (field, keys, response.status, response.body[:200])


@pytest.mark.parametrize(
    "document",
    [
        b'{"keys": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"keys": [{"kty": "OKP", "n": ' + b"9" * 5000 + b"}]}",
        b'{"keys": [{"kty": "OKP", "crv": NaN}]}',
        b'{"keys": [], "keys": 1}',
        b"\xff\xfe{}",
        b"",
    ],
    ids=["deeply nested", "huge integer", "NaN", "duplicate keys", "not utf-8", "empty"],
)
def test_jwks_unreadable_document_is_503(
    api: ApiClient,
    configure_auth: Configure,
    jwks_server: JwksServer,
    alice: str,
    document: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = new_signing_key()
    monkeypatch.setattr(
        jwks_server, "respond", lambda: (200, document, {"Content-Type": "application/json"})
    )
    configure_auth(BETTER_AUTH_URL=jwks_server.base_url)
    token = key.sign(claims_for(alice, jwks_server.base_url))
    response = api.get(f"/api/{alice}/tasks", token=token)
    assert response.status == 503, response.body[:200]
    assert response.json() == {"detail": "Signing keys unavailable, retry shortly"}
