"""The chat store: history is in turn order, another user's conversation is not found, and the
window is read by an index scan whatever the conversation's length."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlmodel import Session

from todo_core.chat import store
from todo_core.db import get_engine
from todo_core.errors import NotFound


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


def _plan(direct_url: str, conversation_id: int) -> dict[str, Any]:
    with psycopg.connect(direct_url) as connection:
        connection.execute("ANALYZE message")
        row = connection.execute(
            "EXPLAIN (FORMAT JSON) SELECT id, role, content, tool_calls FROM message"
            " WHERE conversation_id = %s"
            " ORDER BY coalesce(reply_to_id, id) DESC, id DESC LIMIT 20",
            (conversation_id,),
        ).fetchone()
    assert row is not None
    plan: dict[str, Any] = row[0][0]["Plan"]
    return plan


def _node_types(plan: dict[str, Any]) -> list[str]:
    return [plan["Node Type"]] + [t for p in plan.get("Plans", []) for t in _node_types(p)]


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
    for conversation_id in (small, large):
        plan = _plan(direct_url, conversation_id)
        nodes = _node_types(plan)
        assert "Sort" not in nodes, json.dumps(plan)
        scan = plan["Plans"][0]
        assert scan["Node Type"] == "Index Scan"
        assert scan["Index Name"] == "ix_message_conversation_turn"
        assert scan["Scan Direction"] == "Backward"
