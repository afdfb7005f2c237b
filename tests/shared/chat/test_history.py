"""The history's statements: each page is read by a backward index scan, whatever the user's
number of conversations or the conversation's length, and the single-conversation statements use
its primary key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlmodel import Session

from todo_core.chat import history
from todo_core.db import get_engine


@pytest.fixture
def session(api: object) -> Iterator[Session]:
    with Session(get_engine()) as session:
        yield session


def _plan(session: Session, statement: Any, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """The nodes of the plan PostgreSQL makes for the module's own statement, top down
    (EXPLAIN without ANALYZE: nothing runs, nothing is deleted)."""
    connection = session.connection()
    compiled = statement.compile(connection)
    row = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), {**parameters}).one()

    def walk(plan: dict[str, Any]) -> list[dict[str, Any]]:
        return [plan] + [n for child in plan.get("Plans", []) for n in walk(child)]

    return walk(row[0][0]["Plan"])


def _shape(plan: list[dict[str, Any]]) -> list[tuple[str, str | None, str | None]]:
    return [(n["Node Type"], n.get("Index Name"), n.get("Scan Direction")) for n in plan]


@pytest.fixture
def crowded(direct_url: str, alice: str) -> int:
    """Alice's conversation of 100,000 messages, among 50,000 conversations (1,000 of them
    hers); returns its id."""
    with psycopg.connect(direct_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO conversation (user_id, title, created_at, updated_at)"
            " SELECT CASE WHEN n %% 50 = 0 THEN %s ELSE 'other' || n %% 997 END, 't',"
            " now() - n * interval '1 second', now() - n * interval '1 second'"
            " FROM generate_series(1, 50000) AS n",
            (alice,),
        )
        row = connection.execute(
            "SELECT max(id) FROM conversation WHERE user_id = %s", (alice,)
        ).fetchone()
        assert row is not None
        conversation_id = int(row[0])
        connection.execute(
            "INSERT INTO message (conversation_id, user_id, role, content)"
            " SELECT %s, %s, 'user', 'm' || n FROM generate_series(1, 100000) AS n",
            (conversation_id, alice),
        )
        connection.execute("ANALYZE conversation")
        connection.execute("ANALYZE message")
    return conversation_id


def test_history_pages_are_backward_index_scans(session: Session, alice: str, crowded: int) -> None:
    after = {"after_updated_at": datetime.now(UTC), "after_id": 10**12}
    cases = [
        (history._LIST_CONVERSATIONS[False], {}, "ix_conversation_user_id_updated_at_id"),
        (history._LIST_CONVERSATIONS[True], after, "ix_conversation_user_id_updated_at_id"),
        (history._LIST_MESSAGES[False], {"conversation": crowded}, "ix_message_conversation_turn"),
        (
            history._LIST_MESSAGES[True],
            {"conversation": crowded, "after_turn": 10**12, "after_id": 10**12},
            "ix_message_conversation_turn",
        ),
    ]
    for statement, parameters, index in cases:
        # The index gives the page's order: no sort, and the scan stops after ``rows``.
        plan = _plan(session, statement, {"owner": alice, "rows": 51, **parameters})
        assert _shape(plan) == [
            ("Limit", None, None),
            ("Index Scan", index, "Backward"),
        ], json.dumps(plan)


def test_history_one_conversation_is_read_and_deleted_by_its_primary_key(
    session: Session, alice: str, crowded: int
) -> None:
    by_key = ("Index Scan", "conversation_pkey", "Forward")
    for statement, shape in (
        (history._OWNED, [by_key]),
        (history._DELETE, [("ModifyTable", None, None), by_key]),
    ):
        plan = _plan(session, statement, {"owner": alice, "conversation": crowded})
        assert _shape(plan) == shape, json.dumps(plan)
