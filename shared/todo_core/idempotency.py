"""Idempotency keys: a POST retried with the same ``Idempotency-Key`` gets the first response.

A key is scoped to its user and lives ``IDEMPOTENCY_KEY_TTL_SECONDS``. Its row records a hash of
the request (method, route, validated body), and, once the request has finished, the status and
body of the first response. The key row is claimed in the **same statement** that stores the
request's effect (the task, the user's chat message), so the two are written together or not at
all: a retry, even one racing the first request, can never store the effect twice.

The claim is ``INSERT ... ON CONFLICT (user_id, key) DO UPDATE ... WHERE expired``:
a live row makes the claim (and so the whole write) a no-op, an expired one is taken over in
place. The effect's ids are drawn from their sequences first, so the claim can name them and the
effect's INSERT can read from the claim. Expired rows of the user are purged in the same
statement.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import CHAR, JSON, BigInteger, Column, Index, bindparam, select, update
from sqlalchemy.sql.expression import Update
from sqlmodel import Field, Session, SQLModel, col

from todo_core.db import UTCDateTime
from todo_core.errors import IdempotencyKeyReused
from todo_core.ids import USER_ID_MAX
from todo_core.text import IDEMPOTENCY_KEY_MAX


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_key"
    # "This user's expired keys" (the lazy purge) is a range of this index.
    __table_args__ = (Index("ix_idempotency_key_user_id_expires_at", "user_id", "expires_at"),)

    user_id: str = Field(max_length=USER_ID_MAX, primary_key=True)
    key: str = Field(max_length=IDEMPOTENCY_KEY_MAX, primary_key=True)
    request_hash: str = Field(sa_column=Column(CHAR(64), nullable=False))
    status_code: int | None = Field(default=None)
    # json, not jsonb: jsonb reorders object keys, and a replay must be byte for byte the first
    # response. Nothing ever queries inside it.
    response: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # A chat turn's question, so that a retry answers it instead of asking it again.
    conversation_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    user_message_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # While a chat turn's assistant works, retries wait; after this, a retry may take over.
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


def request_fingerprint(method: str, route: str, body: BaseModel) -> str:
    """SHA-256 of the method, the route and the *validated* body as canonical JSON: spacing,
    key order and what validation normalizes (trimmed text, omitted defaults) do not count."""
    canonical = json.dumps(
        body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(f"{method} {route}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """What a request with a key writes about it, beside its effect."""

    user_id: str
    key: str
    request_hash: str
    now: datetime
    expires_at: datetime
    locked_until: datetime | None = None
    """Set while the request works after storing its effect (a chat turn's assistant)."""

    @classmethod
    def for_request(
        cls,
        *,
        user_id: str,
        key: str,
        request_hash: str,
        now: datetime,
        ttl_seconds: int,
        lease_seconds: float | None = None,
    ) -> KeyClaim:
        return cls(
            user_id=user_id,
            key=key,
            request_hash=request_hash,
            now=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
            locked_until=None if lease_seconds is None else now + timedelta(seconds=lease_seconds),
        )

    def sql_parameters(self) -> dict[str, Any]:
        """The parameters :data:`PG_CLAIM_INPUT` names."""
        return {
            "user_id": self.user_id,
            "key": self.key,
            "request_hash": self.request_hash,
            "now": self.now,
            "expires_at": self.expires_at,
            "locked_until": self.locked_until,
        }


def claim_parameters(claim: KeyClaim | None, *, user_id: str, now: datetime) -> dict[str, Any]:
    """The parameters :data:`PG_CLAIM_INPUT` names: the claim's, or, for a request without a
    key, the user and the time with every key column NULL (a statement then claims nothing)."""
    if claim is not None:
        return claim.sql_parameters()
    return {
        "user_id": user_id,
        "key": None,
        "request_hash": None,
        "now": now,
        "expires_at": None,
        "locked_until": None,
    }


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A live key row, as a retry finds it."""

    request_hash: str
    status_code: int | None
    response: dict[str, Any] | None
    conversation_id: int | None
    user_message_id: int | None
    locked_until: datetime | None


@dataclass(frozen=True, slots=True)
class KeyedResponse:
    """The response a keyed request gets: its own, or the first one's (``replayed``)."""

    status_code: int
    body: dict[str, Any]
    replayed: bool


class KeyHeld(Exception):
    """Another attempt (earlier or concurrent) holds the key: read it to learn what to do."""


def require_same_request(stored: StoredKey, request_hash: str) -> None:
    """A key names one request: reusing it for another is the client's bug, a 422."""
    if stored.request_hash != request_hash:
        raise IdempotencyKeyReused()


# --- PostgreSQL: fragments of the one statement that claims a key and stores the effect ---

PG_CLAIM_INPUT = """
    CAST(:user_id AS varchar) AS user_id, CAST(:key AS varchar) AS key,
    CAST(:request_hash AS char(64)) AS request_hash, CAST(:now AS timestamptz) AS now,
    CAST(:expires_at AS timestamptz) AS expires_at,
    CAST(:locked_until AS timestamptz) AS locked_until"""
"""Columns of the statement's ``input`` CTE that the claim and the purge read."""


def pg_claim_cte(
    *,
    source: str,
    status_code: str = "NULL",
    response: str = "NULL",
    conversation_id: str = "NULL",
    user_message_id: str = "NULL",
    locked_until: str = "NULL",
    where: str = "TRUE",
) -> str:
    """``claimed``: one row if this request now holds the key (new, or expired and taken over),
    none if a live row holds it (or ``where`` is false). ``source`` must provide ``input``'s
    columns."""
    return f"""claimed AS (
    INSERT INTO idempotency_key AS k (user_id, key, request_hash, status_code, response,
        conversation_id, user_message_id, locked_until, created_at, expires_at)
    SELECT input.user_id, input.key, input.request_hash, {status_code}, {response},
           {conversation_id}, {user_message_id}, {locked_until}, input.now, input.expires_at
    FROM {source}
    WHERE {where}
    ON CONFLICT (user_id, key) DO UPDATE
    SET request_hash = excluded.request_hash, status_code = excluded.status_code,
        response = excluded.response, conversation_id = excluded.conversation_id,
        user_message_id = excluded.user_message_id, locked_until = excluded.locked_until,
        created_at = excluded.created_at, expires_at = excluded.expires_at
    WHERE k.expires_at <= excluded.created_at
    RETURNING k.status_code, k.response, k.conversation_id, k.user_message_id
)"""  # noqa: S608  (fragments are SQL expressions chosen in code, never input)


PG_PURGE_CTE = """purged AS (
    DELETE FROM idempotency_key AS k
    WHERE (k.user_id, k.key) IN (
        SELECT e.user_id, e.key FROM idempotency_key AS e, input
        WHERE e.user_id = input.user_id AND e.expires_at <= input.now AND e.key <> input.key
        FOR UPDATE OF e SKIP LOCKED
    )
)"""
"""The user's other expired keys go as a side effect of a keyed write (an index range scan).

A key another request has locked is skipped, not waited for (the next keyed write purges it):
that request may be taking it over, and has then claimed its own key first, just as this one
has. Two retries of one user each taking over an expired key of its own, and each waiting in
its purge for the other's, were a deadlock (one of them a 503)."""


# --- Reading and settling a key: one small statement each ---


_READ_KEY = select(
    col(IdempotencyKey.request_hash),
    col(IdempotencyKey.status_code),
    col(IdempotencyKey.response),
    col(IdempotencyKey.conversation_id),
    col(IdempotencyKey.user_message_id),
    col(IdempotencyKey.locked_until),
).where(
    col(IdempotencyKey.user_id) == bindparam("owner"),
    col(IdempotencyKey.key) == bindparam("the_key"),
    col(IdempotencyKey.expires_at) > bindparam("now"),
)


def _update_unanswered() -> Update:
    """An UPDATE of the user's key while it has no response (a settled key never changes)."""
    return update(IdempotencyKey).where(
        col(IdempotencyKey.user_id) == bindparam("owner"),
        col(IdempotencyKey.key) == bindparam("the_key"),
        col(IdempotencyKey.response).is_(None),
    )


_RECORD_RESPONSE = _update_unanswered().values(
    status_code=bindparam("new_status_code"),
    response=bindparam("new_response", type_=JSON),
    locked_until=None,
)
_RELEASE_LEASE = _update_unanswered().values(locked_until=bindparam("now"))


def read_key(session: Session, *, user_id: str, key: str, now: datetime) -> StoredKey | None:
    """The user's live row for ``key``, if any (an expired row counts as absent)."""
    row = (
        session.connection()
        .execute(_READ_KEY, {"owner": user_id, "the_key": key, "now": now})
        .one_or_none()
    )
    if row is None:
        return None
    return StoredKey(
        request_hash=row.request_hash,
        status_code=row.status_code,
        response=row.response,
        conversation_id=row.conversation_id,
        user_message_id=row.user_message_id,
        locked_until=row.locked_until,
    )


def record_response(
    session: Session, *, user_id: str, key: str, status_code: int, response: dict[str, Any]
) -> None:
    """Settle a key with its request's final response (e.g. a 404 when the chat turn's
    conversation was deleted while it ran): retries replay it instead of waiting on a lease."""
    session.connection().execute(
        _RECORD_RESPONSE,
        {
            "owner": user_id,
            "the_key": key,
            "new_status_code": status_code,
            "new_response": response,
        },
    )
    session.commit()


def release_lease(session: Session, *, user_id: str, key: str, now: datetime) -> None:
    """End an unanswered request's lease at once (its work failed): a retry may take over."""
    session.connection().execute(_RELEASE_LEASE, {"owner": user_id, "the_key": key, "now": now})
    session.commit()
