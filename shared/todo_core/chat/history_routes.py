"""HTTP routes for the conversation history."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Response, status

from todo_core.api import AUTHENTICATED_ROUTE_RESPONSES, JSONBody, Routes, not_found_response
from todo_core.chat import history
from todo_core.chat.models import ConversationPage, MessagePage
from todo_core.deps import PlainDigits, SessionDep, UserId
from todo_core.ids import MAX_ID
from todo_core.pagination import CursorQuery

router = Routes(tags=["conversations"], responses=AUTHENTICATED_ROUTE_RESPONSES)

ConversationId = Annotated[
    int, Path(ge=1, le=MAX_ID, description="The conversation's id."), PlainDigits
]
_NOT_FOUND = not_found_response("conversation")


@router.get("/api/{user_id}/conversations", response_model=ConversationPage)
async def list_conversations(
    session: SessionDep,
    user_id: UserId,
    limit: Annotated[int, Query(ge=1, le=100), PlainDigits] = 20,
    cursor: Annotated[str | None, CursorQuery] = None,
) -> ConversationPage:
    """The caller's conversations, most recently active first."""
    return history.list_conversations(session, user_id=user_id, limit=limit, cursor=cursor)


@router.get(
    "/api/{user_id}/conversations/{conversation_id}/messages",
    response_model=MessagePage,
    responses=_NOT_FOUND,
)
async def list_messages(
    session: SessionDep,
    user_id: UserId,
    conversation_id: ConversationId,
    limit: Annotated[int, Query(ge=1, le=200), PlainDigits] = 50,
    cursor: Annotated[str | None, CursorQuery] = None,
) -> JSONBody:
    """A page of messages, oldest first; ``next_cursor`` pages back to older ones."""
    return JSONBody(
        history.list_messages(
            session, user_id=user_id, conversation_id=conversation_id, limit=limit, cursor=cursor
        )
    )


@router.delete(
    "/api/{user_id}/conversations/{conversation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_NOT_FOUND,
)
async def delete_conversation(
    session: SessionDep, user_id: UserId, conversation_id: ConversationId
) -> Response:
    """Delete a conversation and its messages."""
    history.delete_conversation(session, user_id=user_id, conversation_id=conversation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
