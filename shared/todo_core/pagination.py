"""Opaque keyset cursors: the sort key of the last item of a page, base64url-encoded JSON.

A cursor that does not decode to the expected shape is a 422 in FastAPI's shape, like any other
invalid query parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator


def encode_cursor(*values: int | datetime) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps(plain, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError):
        raise ValueError("not a cursor returned by this API") from None
    if not isinstance(values, list) or len(values) != 2:
        raise ValueError("not a cursor returned by this API")
    return values


MAX_ID = 2**63 - 1


def decode_id_cursor(cursor: str) -> tuple[int, int]:
    """A cursor of two ids (turn, message id)."""
    first, second = _decode(cursor)
    if not all(type(v) is int and 1 <= v <= MAX_ID for v in (first, second)):
        raise ValueError("not a cursor returned by this API")
    return first, second


def decode_time_cursor(cursor: str) -> tuple[datetime, int]:
    """A cursor of a timestamp and an id."""
    moment, identifier = _decode(cursor)
    if not isinstance(moment, str) or type(identifier) is not int or not 1 <= identifier <= MAX_ID:
        raise ValueError("not a cursor returned by this API")
    parsed = datetime.fromisoformat(moment)
    if parsed.tzinfo is None:
        raise ValueError("not a cursor returned by this API")
    return parsed, identifier


def _valid_id_cursor(cursor: str) -> str:
    decode_id_cursor(cursor)
    return cursor


def _valid_time_cursor(cursor: str) -> str:
    decode_time_cursor(cursor)
    return cursor


IdCursor = Annotated[str, AfterValidator(_valid_id_cursor)]
"""A query parameter holding an (id, id) cursor; checked when the request is parsed."""

TimeCursor = Annotated[str, AfterValidator(_valid_time_cursor)]
"""A query parameter holding a (timestamp, id) cursor; checked when the request is parsed."""
