"""HTTP routes for tasks: translate requests into service calls and results into responses."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Response, status
from pydantic import TypeAdapter

from todo_core.api import (
    AUTHENTICATED_ROUTE_RESPONSES,
    IDEMPOTENCY_RESPONSES,
    JSONBody,
    Routes,
    not_found_response,
)
from todo_core.deps import IdempotencyKeyHeader, PlainDigits, SessionDep, TaskId, UserId
from todo_core.observability import TASKS_CREATED, count
from todo_core.pagination import IdCursorQuery
from todo_core.settings import get_settings
from todo_core.tasks import service
from todo_core.tasks.models import TaskCreate, TaskPublic, TaskStatus, TaskUpdate

router = Routes(tags=["tasks"], responses=AUTHENTICATED_ROUTE_RESPONSES)

_NOT_FOUND = not_found_response("task")
REPLAYED_HEADER = "Idempotent-Replayed"
"""Set on a response that repeats the first response to an Idempotency-Key."""
_KEYED = IDEMPOTENCY_RESPONSES
# The routes serialise their own responses, in one pass: see JSONBody.
_TASK = TypeAdapter(TaskPublic)
_TASKS = TypeAdapter(list[TaskPublic])


_NEXT_PAGE = {
    200: {
        "headers": {
            "Link": {
                "description": "The next (older) page, if there is one: `<?status=…&limit=…"
                '&cursor=…>; rel="next"`, relative to this request\'s URL.',
                "schema": {"type": "string"},
            }
        }
    }
}


@router.get("/api/{user_id}/tasks", response_model=list[TaskPublic], responses=_NEXT_PAGE)
async def list_tasks(
    session: SessionDep,
    user_id: UserId,
    status: TaskStatus = TaskStatus.all,
    limit: Annotated[int, Query(ge=1, le=500), PlainDigits] = 100,
    cursor: Annotated[str | None, IdCursorQuery] = None,
) -> JSONBody:
    """The caller's tasks, newest first, filtered by status, a page at a time: when there are
    more, the ``Link`` header's ``rel="next"`` gives the next page's query."""
    page = service.list_task_page(
        session, user_id=user_id, status=status, limit=limit, cursor=cursor
    )
    headers = None
    if page.next_cursor is not None:
        query = urlencode({"status": status.value, "limit": limit, "cursor": page.next_cursor})
        headers = {"Link": f'<?{query}>; rel="next"'}
    return JSONBody(_TASKS.dump_json(page.tasks), headers=headers)


@router.post(
    "/api/{user_id}/tasks",
    response_model=TaskPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_KEYED,
)
async def create_task(
    session: SessionDep,
    user_id: UserId,
    body: TaskCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONBody:
    """Create a pending task. With an Idempotency-Key, a retry gets the first response."""
    if idempotency_key is None:
        task = service.create_task(session, user_id=user_id, data=body)
        count(TASKS_CREATED)
        return JSONBody(_TASK.dump_json(task), status_code=status.HTTP_201_CREATED)
    from todo_core.tasks import keyed  # noqa: PLC0415  (only keyed requests load it)

    result = keyed.create_task_once(
        session,
        user_id=user_id,
        data=body,
        idempotency_key=idempotency_key,
        ttl_seconds=get_settings().idempotency_key_ttl_seconds,
    )
    if not result.replayed:
        count(TASKS_CREATED)
    return JSONBody(
        _TASK.dump_json(TaskPublic.model_validate(result.body)),
        status_code=result.status_code,
        headers={REPLAYED_HEADER: "true"} if result.replayed else None,
    )


@router.get("/api/{user_id}/tasks/{task_id}", response_model=TaskPublic, responses=_NOT_FOUND)
async def get_task(session: SessionDep, user_id: UserId, task_id: TaskId) -> JSONBody:
    """One task."""
    task = service.get_task(session, user_id=user_id, task_id=task_id)
    return JSONBody(_TASK.dump_json(task))


@router.put("/api/{user_id}/tasks/{task_id}", response_model=TaskPublic, responses=_NOT_FOUND)
async def update_task(
    session: SessionDep, user_id: UserId, task_id: TaskId, body: TaskUpdate
) -> JSONBody:
    """Change a task's title, description or completion; fields left out are kept."""
    task = service.update_task(session, user_id=user_id, task_id=task_id, data=body)
    return JSONBody(_TASK.dump_json(task))


@router.delete(
    "/api/{user_id}/tasks/{task_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_NOT_FOUND
)
async def delete_task(session: SessionDep, user_id: UserId, task_id: TaskId) -> Response:
    """Delete a task."""
    service.delete_task(session, user_id=user_id, task_id=task_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch(
    "/api/{user_id}/tasks/{task_id}/complete", response_model=TaskPublic, responses=_NOT_FOUND
)
async def toggle_task(session: SessionDep, user_id: UserId, task_id: TaskId) -> JSONBody:
    """Toggle a task between pending and completed."""
    task = service.toggle_task(session, user_id=user_id, task_id=task_id)
    return JSONBody(_TASK.dump_json(task))
