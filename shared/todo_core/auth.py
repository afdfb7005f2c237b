"""Bearer token verification: one seam, :func:`verify_token`, that returns the token's user id.

Accepted today: HS256 tokens signed with the shared ``BETTER_AUTH_SECRET`` (what a frontend's own
middleware signs). The algorithm is chosen by the server, never by the token: an HS256 header is
verified against the secret with ``algorithms=["HS256"]`` only, so ``alg: none`` and algorithm
confusion are refused. Any other ``alg`` is refused until a verifier for it is configured.
"""

from __future__ import annotations

from typing import Any

import jwt

from todo_core.errors import NotAuthenticated
from todo_core.settings import Settings, get_settings

LEEWAY_SECONDS = 30
"""Clock skew tolerated on ``exp``, ``nbf`` and ``iat``."""


def _decode_hs256(token: str, secret: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        secret,
        algorithms=["HS256"],
        leeway=LEEWAY_SECONDS,
        options={"require": ["exp", "sub"], "verify_aud": False},
    )
    return claims


def verify_token(token: str, *, settings: Settings | None = None) -> str:
    """Verify ``token`` and return its subject (the user id). Raise NotAuthenticated otherwise."""
    settings = settings or get_settings()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise NotAuthenticated("Malformed token") from None
    algorithm = header.get("alg")
    try:
        if algorithm == "HS256" and settings.better_auth_secret:
            claims = _decode_hs256(token, settings.better_auth_secret)
        else:
            raise NotAuthenticated("Token algorithm not accepted")
    except jwt.ExpiredSignatureError:
        raise NotAuthenticated("Token has expired") from None
    except jwt.PyJWTError:
        raise NotAuthenticated("Invalid token") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise NotAuthenticated("Token has no subject")
    return subject
