"""Keyset cursors: the sort key of the last item of a page, as ``"<first>.<second>"`` (the history
lists) or ``"<id>"`` (the task list, sorted by id alone).

Clients treat a cursor as opaque and pass back the ``next_cursor`` they were given. Its pattern is
exact (positive integers of at most 18 digits, so each fits PostgreSQL's bigint): any string that
matches it is a cursor this API can use, and any other is a 422 in FastAPI's shape.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import Query

CURSOR_PATTERN = r"^[1-9][0-9]{0,17}\.[1-9][0-9]{0,17}$"

CursorQuery = Query(
    min_length=3,
    max_length=37,
    pattern=CURSOR_PATTERN,
    description="The `next_cursor` of the previous page.",
)

ID_CURSOR_PATTERN = r"^[1-9][0-9]{0,17}$"

IdCursorQuery = Query(
    min_length=1,
    max_length=18,
    pattern=ID_CURSOR_PATTERN,
    description='The `cursor` of the previous page\'s `Link: <…>; rel="next"` header.',
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(first: int, second: int) -> str:
    return f"{first}.{second}"


def decode_cursor(cursor: str) -> tuple[int, int]:
    """The two integers of a cursor that matched :data:`CURSOR_PATTERN`."""
    first, second = cursor.split(".")
    return int(first), int(second)


def timestamp_key(moment: datetime) -> int:
    """A timestamp as whole microseconds since the epoch: exact, so keyset pages never skip."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


_LATEST_KEY = timestamp_key(datetime.max.replace(tzinfo=UTC))


def from_timestamp_key(key: int) -> datetime:
    """The timestamp of a key; a key past the year 9999 (never issued) means "the latest"."""
    return _EPOCH + timedelta(microseconds=min(key, _LATEST_KEY))
