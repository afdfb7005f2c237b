"""FastAPI dependencies shared by every route, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator
from sqlmodel import Session

from todo_core.auth import verify_token
from todo_core.db import open_session
from todo_core.errors import NotAuthenticated, PermissionDenied
from todo_core.ids import MAX_ID, USER_ID_MAX, USER_ID_PATTERN
from todo_core.text import IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_KEY_PATTERN

_bearer = HTTPBearer(auto_error=False, description="A Better Auth JWT (or an HS256 token).")


def authorized_user_id(
    user_id: Annotated[str, Path(min_length=1, max_length=USER_ID_MAX, pattern=USER_ID_PATTERN)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The path's ``user_id``, once the bearer token proves the caller is that user."""
    if credentials is None:
        # No header, or a scheme other than Bearer: RFC 6750 says send a bare challenge.
        raise NotAuthenticated()
    if verify_token(credentials.credentials) != user_id:
        raise PermissionDenied()
    return user_id


SessionDep = Annotated[Session, Depends(open_session)]
UserId = Annotated[str, Depends(authorized_user_id)]


def _plain_digits(value: object) -> object:
    # pydantic would read " 1", "1_000" or a full-width digit as numbers; an id in a URL is
    # plain ASCII digits or it is not an id.
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a positive integer written in plain digits")
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
