"""The HTTP route of the chat turn (the history routes are in ``history_routes``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import ConfigDict, TypeAdapter, field_validator

from todo_core.api import (
    AUTHENTICATED_ROUTE_RESPONSES,
    IDEMPOTENCY_RESPONSES,
    ErrorMessage,
    JSONBody,
    Routes,
    not_found_response,
)
from todo_core.chat import service
from todo_core.chat.models import ChatRequestBase, ChatResponse
from todo_core.deps import IdempotencyKeyHeader, PlainDigits, SessionDep, UserId
from todo_core.ids import MAX_ID
from todo_core.observability import CHAT_TURNS, count
from todo_core.settings import get_settings


def _publish_message_limit(schema: dict[str, Any]) -> None:
    schema["properties"]["message"]["maxLength"] = get_settings().chat_max_message_chars


class ChatRequest(ChatRequestBase):
    """The chat route's body: the limit on the message is the deployment's
    ``CHAT_MAX_MESSAGE_CHARS``, checked and published (in the OpenAPI schema) here."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_publish_message_limit)

    @field_validator("message")
    @classmethod
    def _within_limit(cls, value: str) -> str:
        limit = get_settings().chat_max_message_chars
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters after trimming")
        return value


router = Routes(tags=["chat"], responses=AUTHENTICATED_ROUTE_RESPONSES)

ConversationId = Annotated[
    int, Path(ge=1, le=MAX_ID, description="The conversation's id."), PlainDigits
]
_NOT_FOUND = not_found_response("conversation")
_RESPONSE = TypeAdapter(ChatResponse)
_CHAT_RESPONSES = {
    **_NOT_FOUND,
    **IDEMPOTENCY_RESPONSES,
    429: {
        "model": ErrorMessage,
        "description": "Too many chat turns for this user in the window; retry after Retry-After",
    },
    502: {
        "model": ErrorMessage,
        "description": (
            "The assistant failed (the model refused the key or the request, answered something"
            " unreadable, or asked for tools too many rounds); the message is stored"
        ),
    },
    503: {
        "model": ErrorMessage,
        "description": (
            "The model is rate limiting, failing or unreachable (or the database is down);"
            " the message is stored; retry with the same key after Retry-After"
        ),
    },
    504: {
        "model": ErrorMessage,
        "description": "The model did not answer in time; the message is stored; retry (same key)",
    },
}


@router.post("/api/{user_id}/chat", response_model=ChatResponse, responses=_CHAT_RESPONSES)
async def chat(
    session: SessionDep,
    user_id: UserId,
    body: ChatRequest,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONBody:
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
    # Built and validated once by the turn; serialised here in one pass (see JSONBody).
    return JSONBody(_RESPONSE.dump_json(response))
