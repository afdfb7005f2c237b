"""Fixtures for the auth tests: the auth configuration (environment + caches), a local JWKS
endpoint, signing keys of each type, a controllable clock for the JWKS cache, and real tokens
from the `better-auth` npm package (infra/better-auth)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.jwks_server import JwksServer
from todo_core import auth
from todo_core.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
BETTER_AUTH_DIR = ROOT / "infra" / "better-auth"
AUTH_VARIABLES = (
    "BETTER_AUTH_SECRET",
    "BETTER_AUTH_URL",
    "BETTER_AUTH_JWKS_URL",
    "BETTER_AUTH_ISSUER",
    "BETTER_AUTH_AUDIENCE",
    "BETTER_AUTH_JWKS_TIMEOUT_SECONDS",
    "BETTER_AUTH_JWKS_REFRESH_SECONDS",
    "BETTER_AUTH_JWKS_CACHE_SECONDS",
)

Configure = Callable[..., None]


@pytest.fixture
def configure_auth(app_environment: dict[str, str]) -> Iterator[Configure]:
    """``configure_auth(BETTER_AUTH_URL=..., ...)`` replaces the whole auth configuration (every
    variable not named is unset) and drops the cached settings and keys; undone afterwards."""
    saved = {name: os.environ.get(name) for name in AUTH_VARIABLES}

    def configure(**variables: str) -> None:
        unknown = set(variables) - set(AUTH_VARIABLES)
        assert not unknown, unknown
        for name in AUTH_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(variables)
        get_settings.cache_clear()
        auth.reset_jwks_cache()

    yield configure
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()
    auth.reset_jwks_cache()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


@dataclass
class Clock:
    """Stands in for ``time.monotonic`` in the JWKS cache, so rate limits need no sleeping."""

    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(auth, "monotonic", fake)
    return fake


@dataclass
class SigningKey:
    """A key pair as a Better Auth instance holds it: a private key and its public JWK."""

    kid: str
    alg: str
    private_key: Any
    jwk: dict[str, Any]

    def sign(self, claims: dict[str, Any], *, alg: str | None = None, **header: Any) -> str:
        """Sign ``claims``; header fields given as None are left out."""
        fields = {name: value for name, value in {"kid": self.kid, **header}.items() if value}
        return jwt.encode(claims, self.private_key, algorithm=alg or self.alg, headers=fields)


def new_signing_key(alg: str = "EdDSA", *, declare_alg: bool = True) -> SigningKey:
    private_key: Any
    if alg == "EdDSA":
        private_key = ed25519.Ed25519PrivateKey.generate()
        algorithm: Any = jwt.algorithms.OKPAlgorithm
    elif alg == "ES256":
        private_key = ec.generate_private_key(ec.SECP256R1())
        algorithm = jwt.algorithms.ECAlgorithm
    elif alg in ("RS256", "PS256"):
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        algorithm = jwt.algorithms.RSAAlgorithm
    else:
        raise ValueError(alg)
    kid = uuid.uuid4().hex
    public_jwk: dict[str, Any] = algorithm.to_jwk(private_key.public_key(), as_dict=True)
    public_jwk["kid"] = kid
    if declare_alg:
        public_jwk["alg"] = alg
    return SigningKey(kid=kid, alg=alg, private_key=private_key, jwk=public_jwk)


def claims_for(user_id: str, issuer: str, *, minutes: int = 15, **extra: Any) -> dict[str, Any]:
    """Claims shaped like Better Auth's: sub, iat, exp, and iss = aud = the frontend's URL."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "iat": now,
        "exp": now + minutes * 60,
        "iss": issuer,
        "aud": issuer,
    }
    claims.update(extra)
    return {name: value for name, value in claims.items() if value is not None}


# ---- the real Better Auth ---------------------------------------------------------------------


def _install_better_auth() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("the Better Auth interop tests need node (>= 20.19) and npm on PATH")
    if not (BETTER_AUTH_DIR / "node_modules" / "better-auth" / "package.json").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=BETTER_AUTH_DIR,
            stdout=sys.stderr,
            check=True,
        )


IssueTokens = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def better_auth() -> IssueTokens:
    """``better_auth("--alg", "ES256", "--count", "2")``: the JSON that infra/better-auth's
    issue-token.mjs printed for those arguments (each distinct call runs Node once)."""
    _install_better_auth()
    issued: dict[tuple[str, ...], dict[str, Any]] = {}

    def issue(*arguments: str) -> dict[str, Any]:
        if arguments not in issued:
            completed = subprocess.run(
                ["node", str(BETTER_AUTH_DIR / "issue-token.mjs"), *arguments],
                capture_output=True,
                check=False,
                text=True,
                timeout=60,
            )
            assert completed.returncode == 0, completed.stderr
            issued[arguments] = json.loads(completed.stdout)
        return issued[arguments]

    return issue
