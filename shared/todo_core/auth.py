"""Bearer token verification: one seam, :func:`verify`, that returns what a token proves (its
user id, how it was signed, its expiry: what a caller that caches the result needs).

Two kinds of token are accepted, each only when configured, and they cannot be confused:

- **HS256** signed with the shared ``BETTER_AUTH_SECRET`` (what a frontend's own middleware
  signs). Verified with the secret and ``algorithms=["HS256"]`` only.
- **Better Auth's JWT plugin tokens** (EdDSA by default; ES256/ES512/RS256/PS256 configurable),
  verified with the public key whose ``kid`` the token names, from the JWKS at
  ``BETTER_AUTH_JWKS_URL``. Each key type has its own allow-list (:data:`KEY_ALGORITHMS`), a key's
  own ``alg`` narrows it further, and ``iss``/``aud`` must match the configured frontend.

The algorithm family is chosen by the server, never by the token: an HS256 header is only ever
checked against the secret, an asymmetric one only against a JWKS key, and ``none`` (or anything
else) is refused. So a public key can never serve as an HMAC secret.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from time import monotonic
from typing import Any

# PyJWT imports urllib.request and http.client itself (for PyJWKClient): no cold-start cost here.
import jwt

from todo_core.errors import NotAuthenticated, ServiceUnavailable
from todo_core.observability import logger
from todo_core.settings import Settings, get_settings

LEEWAY_SECONDS = 30
"""Clock skew tolerated on ``exp``, ``nbf`` and ``iat``."""

MAX_JWKS_BYTES = 256 * 1024
"""A JWKS larger than this is refused rather than parsed."""

KEY_ALGORITHMS: Mapping[tuple[str, str | None], frozenset[str]] = {
    ("OKP", "Ed25519"): frozenset({"EdDSA"}),
    ("OKP", "Ed448"): frozenset({"EdDSA"}),
    ("EC", "P-256"): frozenset({"ES256"}),
    ("EC", "P-384"): frozenset({"ES384"}),
    ("EC", "P-521"): frozenset({"ES512"}),
    ("RSA", None): frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}),
}
"""What a JWKS key of each (``kty``, ``crv``) may verify. No symmetric (``oct``) key is usable."""

JWKS_ALGORITHMS = frozenset().union(*KEY_ALGORITHMS.values())


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key from the JWKS and the algorithms it may verify."""

    key: Any
    algorithms: frozenset[str]


def parse_jwks(document: object) -> dict[str, VerificationKey]:
    """The usable signing keys of a JWKS document, by ``kid``. Keys without a ``kid``, for
    encryption only, of an unsupported type, or whose ``alg`` does not fit their type are left
    out. Raise ValueError when the document is not a JWKS or has no usable key."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys: dict[str, VerificationKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        kid, kty, crv = entry.get("kid"), entry.get("kty"), entry.get("crv")
        if not isinstance(kid, str) or not kid or not isinstance(kty, str):
            continue
        allowed = KEY_ALGORITHMS.get(
            (kty, None if kty == "RSA" or not isinstance(crv, str) else crv)
        )
        if allowed is None:
            continue
        declared = entry.get("alg")
        if declared is not None:
            # Not a string (an array, an object: unhashable) fits no type, like an unknown name.
            if not isinstance(declared, str) or declared not in allowed:
                continue
            allowed = frozenset({declared})
        try:
            key = jwt.PyJWK(entry, algorithm=min(allowed)).key
        except jwt.PyJWTError:
            continue
        keys[kid] = VerificationKey(key=key, algorithms=allowed)
    if not keys:
        raise ValueError("JWKS has no usable signing key")
    return keys


class JwksCache:
    """The JWKS of one URL, fetched on first use and kept for the container's life.

    Re-fetched when older than ``max_age`` (keeping the old keys if that fails, so an outage of
    the frontend does not log everyone out) and when a token names an unknown ``kid`` (so a key
    rotation needs no restart). Fetches after the first are at least ``refresh_interval`` apart,
    so tokens with made-up ``kid`` values cannot turn into a flood of requests.
    """

    def __init__(
        self, url: str, *, timeout: float, refresh_interval: float, max_age: float
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.refresh_interval = refresh_interval
        self.max_age = max_age
        self._keys: dict[str, VerificationKey] | None = None
        self._fetched_at = 0.0
        self._attempted_at = 0.0
        self._lock = threading.Lock()

    def key_for(self, kid: str) -> VerificationKey | None:
        """The key named ``kid``, or None if the JWKS (refreshed if allowed) has no such key.
        Raise ServiceUnavailable when the keys cannot be fetched and are needed."""
        with self._lock:
            now = monotonic()
            if self._keys is None:
                self._keys = self._fetch(now)
            elif now - self._fetched_at >= self.max_age and self._may_refresh(now):
                # A failure is logged in _fetch; the keys we have are still the best we know.
                with contextlib.suppress(ServiceUnavailable):
                    self._keys = self._fetch(now)
            key = self._keys.get(kid)
            if key is None and self._may_refresh(now):
                self._keys = self._fetch(now)
                key = self._keys.get(kid)
            return key

    def _may_refresh(self, now: float) -> bool:
        return now - self._attempted_at >= self.refresh_interval

    def _fetch(self, now: float) -> dict[str, VerificationKey]:
        self._attempted_at = now
        try:
            keys = parse_jwks(json.loads(self._download()))
        except (OSError, ValueError, RecursionError) as error:
            # OSError covers refused, timed out, HTTP errors (urllib's URLError); ValueError bad
            # JSON or no usable key; RecursionError JSON nested deeper than the parser goes. The
            # type is enough to tell which; no token is logged.
            logger.warning("JWKS fetch failed: %s", type(error).__name__)
            raise ServiceUnavailable("Signing keys unavailable, retry shortly") from None
        self._fetched_at = now
        return keys

    def _download(self) -> bytes:
        opener = urllib.request.build_opener(_RefuseRedirects())
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})  # noqa: S310 - settings allow http(s) only
        try:
            with opener.open(request, timeout=self.timeout) as response:
                body: bytes = response.read(MAX_JWKS_BYTES + 1)
        except http.client.HTTPException as error:
            raise OSError(f"bad HTTP response: {type(error).__name__}") from error
        if len(body) > MAX_JWKS_BYTES:
            raise ValueError("JWKS too large")
        return body


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: keys come from the configured URL only."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_jwks_cache: JwksCache | None = None
_jwks_cache_lock = threading.Lock()


def jwks_cache(settings: Settings) -> JwksCache:
    """The container's JWKS cache, created on first use (never at import)."""
    global _jwks_cache  # noqa: PLW0603 - one cache per container, like the database engine
    url = settings.better_auth_jwks_url
    if url is None:
        raise RuntimeError("jwks_cache needs BETTER_AUTH_JWKS_URL")
    with _jwks_cache_lock:
        if _jwks_cache is None or _jwks_cache.url != url:
            _jwks_cache = JwksCache(
                url,
                timeout=settings.better_auth_jwks_timeout_seconds,
                refresh_interval=settings.better_auth_jwks_refresh_seconds,
                max_age=settings.better_auth_jwks_cache_seconds,
            )
        return _jwks_cache


def reset_jwks_cache() -> None:
    """Forget the fetched keys (tests; a changed configuration)."""
    global _jwks_cache  # noqa: PLW0603
    with _jwks_cache_lock:
        _jwks_cache = None


def _decode_hs256(token: str, secret: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        secret,
        algorithms=["HS256"],
        leeway=LEEWAY_SECONDS,
        options={"require": ["exp", "sub"], "verify_aud": False},
    )
    return claims


def _decode_jwks(
    token: str, algorithm: str, header: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise NotAuthenticated("Token has no key id")
    key = jwks_cache(settings).key_for(kid)
    if key is None:
        raise NotAuthenticated("Token signed with an unknown key")
    if algorithm not in key.algorithms:
        raise NotAuthenticated("Token algorithm not accepted for its key")
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=[algorithm],
        issuer=settings.better_auth_issuer,
        audience=settings.better_auth_audience,
        leeway=LEEWAY_SECONDS,
        options={"require": ["exp", "sub", "iss", "aud"]},
    )
    return claims


_STRING_HEADER_FIELDS = ("alg", "kid", "typ")
_STRING_CLAIMS = ("sub", "iss", "jti")
_TIME_CLAIMS = ("exp", "nbf", "iat")


def _check_header_types(header: dict[str, Any]) -> str:
    """The header's ``alg``, once the fields the verifier reads are known to be strings: a
    token is attacker-controlled JSON, and an array where a string belongs must be a 401, not
    a TypeError deep inside a set lookup or PyJWT."""
    for name in _STRING_HEADER_FIELDS:
        if name in header and not isinstance(header[name], str):
            raise NotAuthenticated(f"Malformed token header ({name})")
    algorithm = header.get("alg")
    if algorithm is None:
        raise NotAuthenticated("Malformed token header (alg)")
    return str(algorithm)


def _check_claim_types(claims: dict[str, Any]) -> None:
    """Registered claims of the wrong JSON type are refused, even where PyJWT would let them
    pass (``true`` as a NumericDate, a number as ``iss`` when no issuer is configured)."""
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise NotAuthenticated(f"Invalid token ({name})")
    for name in _STRING_CLAIMS:
        if name in claims and not isinstance(claims[name], str):
            raise NotAuthenticated(f"Invalid token ({name})")
    audience = claims.get("aud")
    if "aud" in claims and not (
        isinstance(audience, str)
        or (isinstance(audience, list) and all(isinstance(a, str) for a in audience))
    ):
        raise NotAuthenticated("Invalid token (aud)")


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """What a token proved: its user, how it was signed, and until when (its ``exp``)."""

    subject: str
    algorithm: str
    expires_at: float


def verify(token: str, *, settings: Settings | None = None) -> VerifiedToken:
    """Verify ``token``: NotAuthenticated if it is not good, ServiceUnavailable when it needs
    the JWKS and that cannot be fetched. The token is parsed twice (its header to choose the
    key, then PyJWT's verifying decode), never more."""
    settings = settings or get_settings()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise NotAuthenticated("Malformed token") from None
    algorithm = _check_header_types(header)
    try:
        if algorithm == "HS256" and settings.better_auth_secret is not None:
            claims = _decode_hs256(token, settings.better_auth_secret)
        elif algorithm in JWKS_ALGORITHMS and settings.better_auth_jwks_url is not None:
            claims = _decode_jwks(token, algorithm, header, settings)
        else:
            raise NotAuthenticated("Token algorithm not accepted")
    except jwt.ExpiredSignatureError:
        raise NotAuthenticated("Token has expired") from None
    except jwt.PyJWTError:
        raise NotAuthenticated("Invalid token") from None
    _check_claim_types(claims)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise NotAuthenticated("Token has no subject")
    # Both decoders require ``exp``, and _check_claim_types made sure it is a number. It is kept
    # as sent: an integer too large for a float is still a valid (if distant) expiry.
    expires_at: float = claims["exp"]
    return VerifiedToken(subject=subject, algorithm=algorithm, expires_at=expires_at)
