"""Floor (b): a bare Lambda handler with psycopg and PyJWT only, doing ``get_task``'s query."""

from __future__ import annotations

import json
import os
from typing import Any

import jwt
import psycopg

_connection: psycopg.Connection[Any] | None = None

_SELECT = (
    "SELECT id, user_id, title, description, completed, created_at, updated_at"
    " FROM task WHERE id = %s AND user_id = %s"
)


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    global _connection  # noqa: PLW0603
    token = event["headers"].get("authorization", "").removeprefix("Bearer ")
    claims = jwt.decode(token, os.environ["BETTER_AUTH_SECRET"], algorithms=["HS256"])
    user_id = event["pathParameters"]["user_id"]
    if claims["sub"] != user_id:
        return {"statusCode": 403, "body": '{"detail":"Forbidden"}'}
    if _connection is None:
        _connection = psycopg.connect(
            os.environ["DATABASE_URL"], autocommit=True, prepare_threshold=None
        )
    task_id = int(event["pathParameters"]["task_id"])
    row = _connection.execute(_SELECT, (task_id, user_id)).fetchone()
    if row is None:
        return {"statusCode": 404, "body": '{"detail":"Task not found"}'}
    names = ("id", "user_id", "title", "description", "completed", "created_at", "updated_at")
    task = dict(zip(names, row, strict=True))
    task["created_at"] = task["created_at"].isoformat()
    task["updated_at"] = task["updated_at"].isoformat()
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(task),
    }
