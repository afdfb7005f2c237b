"""Creating a task under an ``Idempotency-Key``: a retry gets the first response and stores
nothing new. Apart from ``service`` so that only a keyed request loads the idempotency model and
its SQL (the other task functions never do)."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

from todo_core.db import utc_now
from todo_core.errors import IdempotencyKeyInProgress
from todo_core.idempotency import (
    PG_CLAIM_INPUT,
    PG_PURGE_CTE,
    KeyClaim,
    KeyedResponse,
    StoredKey,
    pg_claim_cte,
    read_key,
    request_fingerprint,
    require_same_request,
)
from todo_core.tasks.models import TaskCreate

CREATE_TASK_ROUTE = "/api/{user_id}/tasks"
CREATED = 201


# One statement: claim the key (a live claim by another request makes this a no-op), insert the
# task read from the claim, purge the user's expired keys. The task's id is drawn first so the
# claim can record the whole response. When the claim fails, the last branch returns the key's
# row if this statement's snapshot already sees it (the usual retry): one round trip either way.
_PG_CLAIM_TASK = pg_claim_cte(
    source="input, new_task",
    status_code=str(CREATED),
    response="""json_build_object(
        'id', new_task.id, 'user_id', input.user_id, 'title', input.title,
        'description', input.description, 'completed', FALSE,
        'created_at', input.now, 'updated_at', input.now)""",
)
# Built from constant fragments only; every value is a bound parameter.
_PG_CREATE_TASK_ONCE = text(f"""
WITH input AS (
    SELECT {PG_CLAIM_INPUT},
           CAST(:title AS varchar) AS title, CAST(:description AS varchar) AS description
),
new_task AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('task', 'id')) AS id
),
{_PG_CLAIM_TASK},
created AS (
    INSERT INTO task (id, user_id, title, description, completed, created_at, updated_at)
    SELECT new_task.id, input.user_id, input.title, input.description, FALSE, input.now, input.now
    FROM claimed, new_task, input
),
{PG_PURGE_CTE}
SELECT TRUE AS claimed, claimed.status_code, claimed.response, NULL AS request_hash
FROM claimed
UNION ALL
SELECT FALSE, k.status_code, k.response, k.request_hash
FROM idempotency_key AS k, input
WHERE k.user_id = input.user_id AND k.key = input.key AND k.expires_at > input.now
  AND NOT EXISTS (SELECT FROM claimed)
""")  # noqa: S608


def create_task_once(
    session: Session, *, user_id: str, data: TaskCreate, idempotency_key: str, ttl_seconds: int
) -> KeyedResponse:
    """Create the task unless this user's ``idempotency_key`` already did: then the first
    response comes back (``replayed``), or IdempotencyKeyReused if the key came with another
    body. Racing retries store one task between them."""
    claim = KeyClaim.for_request(
        user_id=user_id,
        key=idempotency_key,
        request_hash=request_fingerprint("POST", CREATE_TASK_ROUTE, data),
        now=utc_now(),
        ttl_seconds=ttl_seconds,
    )
    row = session.execute(
        _PG_CREATE_TASK_ONCE,
        {**claim.sql_parameters(), "title": data.title, "description": data.description},
    ).one_or_none()
    session.commit()
    if row is not None and row.claimed:
        return KeyedResponse(status_code=row.status_code, body=row.response, replayed=False)
    if row is not None:
        stored: StoredKey | None = StoredKey(
            request_hash=row.request_hash,
            status_code=row.status_code,
            response=row.response,
            conversation_id=None,
            user_message_id=None,
            locked_until=None,
        )
    else:
        # A concurrent request claimed the key after this statement's snapshot was taken.
        stored = read_key(session, user_id=claim.user_id, key=claim.key, now=claim.now)
    return _replay(stored, claim)


def _replay(stored: StoredKey | None, claim: KeyClaim) -> KeyedResponse:
    if stored is None:
        # Claimed by a request whose key expired a moment later: retrying is safe.
        raise IdempotencyKeyInProgress()
    require_same_request(stored, claim.request_hash)
    if stored.response is None or stored.status_code is None:
        raise IdempotencyKeyInProgress()  # unreachable: a task's key gets its response at once
    return KeyedResponse(status_code=stored.status_code, body=stored.response, replayed=True)
