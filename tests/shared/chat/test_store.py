"""The chat store: history is in turn order, another user's conversation is not found, and the
window is read by an index scan whatever the conversation's length."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import event
from sqlmodel import Session

from todo_core.chat import store
from todo_core.db import get_engine
from todo_core.errors import NotFound
from todo_core.idempotency import claim_parameters


@pytest.fixture
def session(api: object) -> Iterator[Session]:
    with Session(get_engine()) as session:
        yield session


def test_store_interleaved_turns_read_back_in_turn_order(session: Session, alice: str) -> None:
    first = store.open_turn(
        session, user_id=alice, conversation_id=None, content="q1", title="t", window=20
    )
    cid = first.conversation_id
    # A second turn starts before the first one's reply is stored.
    second = store.open_turn(
        session, user_id=alice, conversation_id=cid, content="q2", title="t", window=20
    )
    assert [m.content for m in second.history] == ["q1"]
    store.finish_turn(
        session,
        user_id=alice,
        conversation_id=cid,
        reply_to_id=second.user_message_id,
        content="a2",
        tool_calls=[],
    )
    store.finish_turn(
        session,
        user_id=alice,
        conversation_id=cid,
        reply_to_id=first.user_message_id,
        content="a1",
        tool_calls=[{"name": "x", "arguments": {}, "result": {"ok": True}}],
    )
    third = store.open_turn(
        session, user_id=alice, conversation_id=cid, content="q3", title="t", window=20
    )
    assert [m.content for m in third.history] == ["q1", "a1", "q2", "a2"]
    assert third.history[1].tool_calls == [{"name": "x", "arguments": {}, "result": {"ok": True}}]
    window = store.open_turn(
        session, user_id=alice, conversation_id=cid, content="q4", title="t", window=3
    )
    assert [m.content for m in window.history] == ["q2", "a2", "q3"]


def test_store_foreign_conversation_is_not_found_and_untouched(
    session: Session, alice: str, bob: str, direct_url: str
) -> None:
    turn = store.open_turn(
        session, user_id=alice, conversation_id=None, content="mine", title="t", window=5
    )
    with pytest.raises(NotFound):
        store.open_turn(
            session,
            user_id=bob,
            conversation_id=turn.conversation_id,
            content="intrusion",
            title="t",
            window=5,
        )
    with pytest.raises(NotFound):
        store.finish_turn(
            session,
            user_id=bob,
            conversation_id=turn.conversation_id,
            reply_to_id=turn.user_message_id,
            content="intrusion",
            tool_calls=[],
        )
    with psycopg.connect(direct_url) as connection:
        contents = [r[0] for r in connection.execute("SELECT content FROM message")]
    assert contents == ["mine"]


def test_store_refuses_a_second_reply_to_one_question(session: Session, alice: str) -> None:
    turn = store.open_turn(
        session, user_id=alice, conversation_id=None, content="q", title="t", window=5
    )
    arguments: dict[str, Any] = {
        "user_id": alice,
        "conversation_id": turn.conversation_id,
        "reply_to_id": turn.user_message_id,
        "content": "a",
        "tool_calls": [],
    }
    store.finish_turn(session, **arguments)
    with pytest.raises(Exception, match="ux_message_reply_to_id"):
        store.finish_turn(session, **arguments)


def _message_scans(session: Session, statement: Any, parameters: dict[str, Any]) -> list[Any]:
    """The scans of ``message`` in the plan PostgreSQL makes for the store's own statement
    (EXPLAIN without ANALYZE: nothing runs, nothing is written)."""
    connection = session.connection()
    compiled = statement.compile(connection)
    row = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), {**parameters}).one()

    def walk(plan: dict[str, Any]) -> list[Any]:
        found = [plan] if plan.get("Relation Name") == "message" else []
        return found + [n for child in plan.get("Plans", []) for n in walk(child)]

    return walk(row[0][0]["Plan"])


def test_store_history_window_is_a_backward_index_scan_at_any_length(
    session: Session, alice: str, direct_url: str
) -> None:
    small = store.open_turn(
        session, user_id=alice, conversation_id=None, content="q", title="t", window=5
    ).conversation_id
    large = store.open_turn(
        session, user_id=alice, conversation_id=None, content="q", title="t", window=5
    ).conversation_id
    with psycopg.connect(direct_url, autocommit=True) as connection:
        for conversation_id, count in ((small, 10), (large, 100_000)):
            connection.execute(
                "INSERT INTO message (conversation_id, user_id, role, content)"
                " SELECT %s, %s, 'user', 'm' || n FROM generate_series(1, %s) AS n",
                (conversation_id, alice, count),
            )
        connection.execute("ANALYZE message")
    now = datetime.now(UTC)
    for conversation_id in (small, large):
        opening = {
            **claim_parameters(None, user_id=alice, now=now),
            "conversation_id": conversation_id,
            "title": "t",
            "content": "q",
            "window": 20,
            "turn_limit": 30,  # the per-user limit on: its counter is read in this statement
            "rate_window_seconds": 60,
        }
        taking_over = {"user_id": alice, "key": "k", "now": now, "lease_until": now, "window": 20}
        for statement, parameters in (
            (store._OPEN_TURN, opening),
            (store._TAKE_OVER, taking_over),
        ):
            scans = _message_scans(session, statement, parameters)
            window = [s for s in scans if s.get("Index Name") == "ix_message_conversation_turn"]
            assert [s["Scan Direction"] for s in window] == ["Backward"], json.dumps(scans)
            assert not [s for s in scans if s["Node Type"] == "Seq Scan"], json.dumps(scans)


def test_store_turn_statements_build_their_result_metadata_once(
    session: Session, alice: str
) -> None:
    # The statements declare their result columns, so SQLAlchemy builds each one's result
    # metadata once per container (with its compiled form), not from the cursor at every turn.
    built: dict[str, list[object]] = {"open": [], "finish": []}

    def record(conn: Any, statement: Any, *args: Any) -> None:
        result = args[-1]
        for name, known in (("open", store._OPEN_TURN), ("finish", store._FINISH_TURN)):
            if statement is known:
                built[name].append(result._metadata)

    engine = get_engine()
    event.listen(engine, "after_execute", record)
    try:
        for _ in range(2):
            turn = store.open_turn(
                session, user_id=alice, conversation_id=None, content="q", title="t", window=5
            )
            store.finish_turn(
                session,
                user_id=alice,
                conversation_id=turn.conversation_id,
                reply_to_id=turn.user_message_id,
                content="a",
                tool_calls=[],
            )
    finally:
        event.remove(engine, "after_execute", record)
    for name, metadata in built.items():
        assert len(metadata) == 2, name
        assert metadata[0] is metadata[1], name
