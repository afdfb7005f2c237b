"""The HTTP route of the chat turn (the history routes are in ``history_routes``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from todo_core.api import (
    AUTHENTICATED_ROUTE_RESPONSES,
    IDEMPOTENCY_RESPONSES,
    ErrorMessage,
    Routes,
    not_found_response,
)
from todo_core.chat import service
from todo_core.chat.models import ChatRequest, ChatResponse
from todo_core.deps import IdempotencyKeyHeader, PlainDigits, SessionDep, UserId
from todo_core.observability import CHAT_TURNS, count
from todo_core.settings import get_settings
from todo_core.tasks.models import MAX_ID

router = Routes(tags=["chat"], responses=AUTHENTICATED_ROUTE_RESPONSES)

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
async def chat(
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
