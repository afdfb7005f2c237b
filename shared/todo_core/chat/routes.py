"""HTTP routes for the chat and the conversation history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from todo_core.chat import service
from todo_core.chat.models import ChatRequest, ChatResponse, ConversationPage, MessagePage
from todo_core.deps import MAX_BIGINT, IdempotencyKeyHeader, SessionDep, UserId
from todo_core.pagination import IdCursor, TimeCursor
from todo_core.settings import get_settings

router = APIRouter(tags=["chat"])

ConversationId = Annotated[int, Path(ge=1, le=MAX_BIGINT, description="The conversation's id.")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such conversation"}}
_CHAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND,
    409: {"description": "The first request with this Idempotency-Key is still in progress"},
    422: {"description": "Invalid input, or the Idempotency-Key was used with another body"},
    502: {"description": "The assistant failed; the message is stored; retry (same key)"},
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
    return service.chat_turn(
        session,
        user_id=user_id,
        conversation_id=body.conversation_id,
        message=body.message,
        settings=get_settings(),
        idempotency_key=idempotency_key,
    )


@router.get("/api/{user_id}/conversations", response_model=ConversationPage)
def list_conversations(
    session: SessionDep,
    user_id: UserId,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[TimeCursor | None, Query()] = None,
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
    cursor: Annotated[IdCursor | None, Query()] = None,
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
