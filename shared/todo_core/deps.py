"""FastAPI dependencies shared by every route, as ``Annotated`` aliases.

The dependencies, like the routes (see :class:`todo_core.api.Routes`), are ``async def`` and call
blocking code (the database, the JWKS endpoint) directly, on the event loop's thread. That is
sound because an invocation runs alone on its event loop: a Lambda container serves one request at
a time, Mangum runs each on the container's loop until it is done, and the local server runs each
function in containers that do the same (one thread and one loop each, one invocation at a time).
A sync dependency or route would instead make FastAPI hand it to AnyIO's worker thread, and
since AnyIO stops its workers with the root task, and every Mangum invocation is one, that meant
starting a new thread on every request. If invocations ever share a loop concurrently (an ASGI
server with many requests in flight), this assumption breaks: blocking calls would stall them
all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Path
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator
from sqlmodel import Session

from todo_core.auth import LEEWAY_SECONDS, verify
from todo_core.db import open_session
from todo_core.errors import NotAuthenticated, PermissionDenied
from todo_core.ids import MAX_ID, USER_ID_MAX, USER_ID_PATTERN
from todo_core.settings import Settings, get_settings
from todo_core.text import IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_KEY_PATTERN

_bearer = HTTPBearer(auto_error=False, description="A Better Auth JWT (or an HS256 token).")

VERIFIED_TOKEN_SECONDS = 60.0
"""How long a container trusts an HS256 token it has verified before checking it again (never
past the token's own expiry)."""
VERIFIED_TOKENS_MAX = 256


@dataclass(frozen=True, slots=True)
class _Verified:
    subject: str
    settings: Settings
    valid_until: float


class VerifiedTokens:
    """The HS256 tokens this container has verified, by their exact text, with the user each
    proves.

    A client sends the same token with every request until it expires; verifying it again each
    time (PyJWT parses it twice, checks the secret's shape and computes the HMAC) was the
    costliest step of a warm request after the SQL. An entry is used only for the very same
    token string, only with the same settings (a rotated secret drops it), and only until the
    token's ``exp`` (with the verifier's leeway) or :data:`VERIFIED_TOKEN_SECONDS` after it was
    verified, whichever comes first. Failures are never kept: a bad token is verified, and
    refused, every time. Tokens verified with a JWKS key are not kept either: whether one is
    still good depends on the key set, which a refresh can change at any request (a key the
    frontend dropped must stop working as soon as the JWKS says so).

    Thread-safe: the local server runs a function's containers as threads of one process, which
    share this cache. Without the lock, two of them evicting the oldest entry at once made one
    fail with a KeyError (a 500). In Lambda the lock is never contended.
    """

    def __init__(
        self,
        *,
        max_entries: int = VERIFIED_TOKENS_MAX,
        max_age: float = VERIFIED_TOKEN_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_entries = max_entries
        self.max_age = max_age
        self.clock = clock
        self._entries: dict[str, _Verified] = {}
        self._lock = threading.Lock()

    def subject(self, token: str, settings: Settings) -> str:
        """The user ``token`` proves; NotAuthenticated (or ServiceUnavailable) as
        :func:`todo_core.auth.verify` raises them."""
        now = self.clock()
        entry = self._entries.get(token)
        if entry is not None and entry.settings is settings and now < entry.valid_until:
            return entry.subject
        verified = verify(token, settings=settings)
        if verified.algorithm == "HS256":
            valid_until = min(verified.expires_at + LEEWAY_SECONDS, now + self.max_age)
            self._remember(token, _Verified(verified.subject, settings, valid_until))
        return verified.subject

    def _remember(self, token: str, entry: _Verified) -> None:
        with self._lock:
            self._entries.pop(token, None)
            if len(self._entries) >= self.max_entries:
                # The oldest entry goes: dicts keep insertion order.
                del self._entries[next(iter(self._entries))]
            self._entries[token] = entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


verified_tokens = VerifiedTokens()


async def authorized_user_id(
    user_id: Annotated[str, Path(min_length=1, max_length=USER_ID_MAX, pattern=USER_ID_PATTERN)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The path's ``user_id``, once the bearer token proves the caller is that user."""
    if credentials is None:
        # No header, or a scheme other than Bearer: RFC 6750 says send a bare challenge.
        raise NotAuthenticated()
    if verified_tokens.subject(credentials.credentials, get_settings()) != user_id:
        raise PermissionDenied()
    return user_id


SessionDep = Annotated[Session, Depends(open_session)]
UserId = Annotated[str, Depends(authorized_user_id)]


def _plain_digits(value: object) -> object:
    # pydantic would read " 1", "+1", "1.0", "1_000" or a full-width digit as numbers; an id
    # or a count in a URL is plain ASCII digits or it is not one. No leading zero either: one
    # spelling per value, so "01" and "1" are never two URLs of one task or one page.
    if isinstance(value, str) and not (
        value.isascii() and value.isdigit() and (value[0] != "0" or value == "0")
    ):
        raise ValueError("must be a positive integer written in plain digits, no leading zero")
    return value


PlainDigits = BeforeValidator(_plain_digits)

# The constraints come before the validator, so that the schema keeps them (minimum, maximum).
TaskId = Annotated[int, Path(ge=1, le=MAX_ID, description="The task's id."), PlainDigits]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description=(
            "Makes the request safe to retry: a retry with the same key and body gets the first"
            " response and stores nothing new. 1..255 printable ASCII characters, e.g. a UUID;"
            " scoped to the user, kept for 24 hours (IDEMPOTENCY_KEY_TTL_SECONDS)."
        ),
    ),
]
"""The optional ``Idempotency-Key`` request header."""
