"""What the database holds, read directly, to check that a request changed nothing."""

from __future__ import annotations

from typing import Any

import psycopg

USER_TABLES = ("task", "conversation", "message", "idempotency_key")


def stored_rows(direct_url: str, user_id: str | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every user table (only ``user_id``'s, when given), in a stable order."""
    where, parameters = ("WHERE user_id = %s", (user_id,)) if user_id is not None else ("", ())
    with psycopg.connect(direct_url) as connection:
        return {
            table: connection.execute(
                f"SELECT * FROM {table} {where} ORDER BY 1, 2",  # noqa: S608  (fixed names)
                parameters,
            ).fetchall()
            for table in USER_TABLES
        }
