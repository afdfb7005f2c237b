"""The cost guard: at most ``CHAT_TURNS_PER_WINDOW`` chat turns per user per
``CHAT_RATE_WINDOW_SECONDS`` (a fixed window per user), checked inside the statement that opens
the turn, so it costs no round trip.

One row per user counts the turns of the current window. The open-turn statement's ``counted``
CTE upserts it: a new window starts at 1; a window under the limit counts one more; a window at
the limit is left alone, and then the statement stores nothing (no message, no key claimed) and
answers a ``limited`` row with the seconds until the window ends (the 429's Retry-After). The
upsert locks the user's row for the statement only, so two turns racing for the last slot get
one each. A retry of a turn whose Idempotency-Key is held is not a new turn and is not counted.

Two attempts at one keyed turn that race (a client's retry sent before the first attempt has
committed) both see no key in their statement's snapshot, so both are counted, though only one
claims the key and stores the message; within one statement the count cannot depend on the claim,
which itself depends on the count. The loser's statement reports the window it counted in
(``counted``), and :data:`UNCOUNT` takes that turn back: one more small statement, on that rare
path only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlmodel import Field, SQLModel

from todo_core.db import UTCDateTime
from todo_core.ids import USER_ID_MAX


class ChatRate(SQLModel, table=True):
    """How many chat turns a user started in the current window."""

    __tablename__ = "chat_rate"

    user_id: str = Field(primary_key=True, max_length=USER_ID_MAX)
    window_start: datetime = Field(sa_type=UTCDateTime)
    turns: int


RATE_INPUT = """
    CAST(:turn_limit AS integer) AS turn_limit,
    make_interval(secs => CAST(:rate_window_seconds AS integer)) AS rate_window"""
"""Columns the open-turn statement's ``input`` CTE adds for the guard."""

RATE_CTES = """fresh AS (  -- a new turn (not a retry of a held key) when the guard is on
    SELECT input.* FROM input
    WHERE input.turn_limit > 0 AND EXISTS (SELECT FROM candidate) AND NOT EXISTS (
        SELECT FROM idempotency_key AS k
        WHERE k.user_id = input.user_id AND k.key = input.key AND k.expires_at > input.now
    )
),
counted AS (
    INSERT INTO chat_rate AS r (user_id, window_start, turns)
    SELECT fresh.user_id, fresh.now, 1 FROM fresh
    ON CONFLICT (user_id) DO UPDATE
    SET turns = CASE WHEN r.window_start <= excluded.window_start
                              - (SELECT rate_window FROM input)
                     THEN 1 ELSE r.turns + 1 END,
        window_start = CASE WHEN r.window_start <= excluded.window_start
                                     - (SELECT rate_window FROM input)
                            THEN excluded.window_start ELSE r.window_start END
    WHERE r.window_start <= excluded.window_start - (SELECT rate_window FROM input)
       OR r.turns < (SELECT turn_limit FROM input)
    RETURNING r.window_start
),
limited AS MATERIALIZED (  -- over the limit: the seconds until the user's window ends
    SELECT greatest(1, ceil(extract(epoch FROM
               coalesce(r.window_start, fresh.now) + fresh.rate_window - fresh.now)))
           AS retry_after_seconds
    FROM fresh LEFT JOIN chat_rate AS r ON r.user_id = fresh.user_id
    WHERE NOT EXISTS (SELECT FROM counted)
)"""
"""The guard's CTEs; they read the statement's ``input`` and ``candidate``."""

# A window is named by its start in microseconds since the epoch: an integer, which no session
# setting (DateStyle, TimeZone) changes between the statement that reports it and the one that
# reads it, which may run on another server connection behind the pooler.
_WINDOW_MICROSECONDS = "CAST(extract(epoch FROM {start}) * 1000000 AS bigint)"

_COUNTED_WINDOW = _WINDOW_MICROSECONDS.format(start="counted.window_start")
COUNTED_ROW = f"""
SELECT 'counted', {_COUNTED_WINDOW}, NULL, NULL, NULL, NULL FROM counted"""  # noqa: S608  (a constant expression)
"""The open-turn statement's marker row of a counted turn (its window, in ``id``)."""

UNCOUNT = text(f"""
UPDATE chat_rate SET turns = turns - 1
WHERE user_id = CAST(:user_id AS varchar) AND turns > 0
  AND {_WINDOW_MICROSECONDS.format(start="window_start")} = CAST(:window AS bigint)""")  # noqa: S608
"""Take back a turn counted by an attempt that lost its key's claim (nothing of it was stored).
Only in the window it was counted in: a window started since has not counted it."""
