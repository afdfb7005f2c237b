"""HTTP routes for the chat and the conversation history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from todo_core.api import (
    AUTHENTICATED_ROUTE_RESPONSES,
    IDEMPOTENCY_RESPONSES,
    ErrorMessage,
    not_found_response,
)
from todo_core.chat import service
from todo_core.chat.models import ChatRequest, ChatResponse, ConversationPage, MessagePage
from todo_core.deps import IdempotencyKeyHeader, PlainDigits, SessionDep, UserId
from todo_core.observability import CHAT_TURNS, count
from todo_core.pagination import CursorQuery
from todo_core.settings import get_settings
from todo_core.tasks.models import MAX_ID

router = APIRouter(tags=["chat"], responses=AUTHENTICATED_ROUTE_RESPONSES)

ConversationId = Annotated[
    int, Path(ge=1, le=MAX_ID, description="The conversation's id."), PlainDigits
]
_NOT_FOUND = not_found_response("conversation")
_CHAT_RESPONSES = {
    **_NOT_FOUND,
    **IDEMPOTENCY_RESPONSES,
    502: {
        "model": ErrorMessage,
        "description": "The assistant failed; the message is stored; retry (same key)",
    },
}


@router.post("/api/{user_id}/chat", response_model=ChatResponse, responses=_CHAT_RESPONSES)
def chat(
    session: SessionDep,
    user_id: UserId,
    body: ChatRequest,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ChatResponse:
    """Send a message; get the assistant's reply and the tool calls it made. With an
    Idempotency-Key, a retry gets the same reply and the message is stored once."""
    response = service.chat_turn(
        session,
        user_id=user_id,
        conversation_id=body.conversation_id,
        message=body.message,
        settings=get_settings(),
        idempotency_key=idempotency_key,
    )
    count(CHAT_TURNS)
    return response


@router.get("/api/{user_id}/conversations", response_model=ConversationPage)
def list_conversations(
    session: SessionDep,
    user_id: UserId,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, CursorQuery] = None,
) -> ConversationPage:
    """The caller's conversations, most recently active first."""
    return service.list_conversations(session, user_id=user_id, limit=limit, cursor=cursor)


@router.get(
    "/api/{user_id}/conversations/{conversation_id}/messages",
    response_model=MessagePage,
    responses=_NOT_FOUND,
)
def list_messages(
    session: SessionDep,
    user_id: UserId,
    conversation_id: ConversationId,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, CursorQuery] = None,
) -> MessagePage:
    """A page of messages, oldest first; ``next_cursor`` pages back to older ones."""
    return service.list_messages(
        session, user_id=user_id, conversation_id=conversation_id, limit=limit, cursor=cursor
    )


@router.delete(
    "/api/{user_id}/conversations/{conversation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_NOT_FOUND,
)
def delete_conversation(
    session: SessionDep, user_id: UserId, conversation_id: ConversationId
) -> Response:
    """Delete a conversation and its messages."""
    service.delete_conversation(session, user_id=user_id, conversation_id=conversation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
