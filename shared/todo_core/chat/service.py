"""Chat operations: the stateless turn, and the conversation history a chat UI pages through.

Nothing is cached between calls: every turn reads what it needs from the database, so any
instance can serve any turn of any conversation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta

from sqlmodel import Session

from todo_core.chat import store
from todo_core.chat.assistant import create_assistant
from todo_core.chat.models import (
    CONVERSATION_NOT_FOUND,
    TITLE_MAX,
    ChatRequestBase,
    ChatResponse,
)
from todo_core.chat.store import OpenedTurn, TurnAlreadyAnswered
from todo_core.chat.tools import TaskTools
from todo_core.chat.types import REPLY_CUT_MARKER
from todo_core.db import DATABASE_UNAVAILABLE_ERRORS, utc_now
from todo_core.errors import (
    AppError,
    AssistantFailed,
    AssistantTimedOut,
    AssistantUnavailable,
    ChatRateLimited,
    IdempotencyKeyInProgress,
    NotFound,
)
from todo_core.idempotency import (
    KeyClaim,
    KeyHeld,
    StoredKey,
    read_key,
    record_response,
    release_lease,
    request_fingerprint,
    require_same_request,
)
from todo_core.observability import ASSISTANT_ERRORS, count, logger
from todo_core.settings import Settings

TITLE_WORDS_MAX = 60
CHAT_ROUTE = "/api/{user_id}/chat"
TURN_LEASE_SECONDS = 45.0
"""How long a keyed turn holds its key while the assistant works: longer than the chat function's
29-second timeout (template.yaml), so a live attempt is never overtaken; a crashed one is, after
this long."""
IN_PROGRESS_WAIT_SECONDS = 5.0
"""How long a retry waits for the first attempt to finish before answering 409."""
IN_PROGRESS_POLL_SECONDS = 0.1


def bounded_reply(text: str, max_chars: int) -> str:
    """``text``, or its first characters and :data:`REPLY_CUT_MARKER` if it is longer than
    ``max_chars``: a model's reply is stored, returned and replayed, and its length is the
    model's to choose (a 7 MB one was stored and sent whole, past Lambda's 6 MB response)."""
    if len(text) <= max_chars:
        return text
    return text[: max_chars - len(REPLY_CUT_MARKER)].rstrip() + REPLY_CUT_MARKER


def title_from_message(message: str) -> str:
    """A conversation title: the first message on one line, cut at a word near 60 characters."""
    line = " ".join(message.split())
    if len(line) <= TITLE_WORDS_MAX:
        return line
    cut = line[:TITLE_WORDS_MAX].rsplit(" ", 1)[0] or line[:TITLE_WORDS_MAX]
    return (cut + "…")[:TITLE_MAX]


def chat_turn(
    session: Session,
    *,
    user_id: str,
    conversation_id: int | None,
    message: str,
    settings: Settings,
    idempotency_key: str | None = None,
) -> ChatResponse:
    """One turn: store the user's message, ask the assistant, store its reply, return it.

    The user's message is committed before the assistant runs and survives its failure; no
    transaction stays open while the assistant works; the reply is linked to the message it
    answers, so concurrent turns of one conversation never mix up their replies.

    With ``idempotency_key``, a retry of the same turn stores no second message: it gets the
    first attempt's reply, waits a little for it (then IdempotencyKeyInProgress), or, if that
    attempt failed or vanished, answers the stored message itself.
    """
    claim = None
    if idempotency_key is not None:
        claim = KeyClaim.for_request(
            user_id=user_id,
            key=idempotency_key,
            request_hash=request_fingerprint(
                "POST",
                CHAT_ROUTE,
                ChatRequestBase.model_construct(conversation_id=conversation_id, message=message),
            ),
            now=utc_now(),
            ttl_seconds=settings.idempotency_key_ttl_seconds,
            lease_seconds=TURN_LEASE_SECONDS,
        )
    try:
        turn = store.open_turn(
            session,
            user_id=user_id,
            conversation_id=conversation_id,
            content=message,
            title=title_from_message(message),
            window=settings.chat_history_window,
            claim=claim,
            turn_limit=settings.chat_turns_per_window,
            rate_window_seconds=settings.chat_rate_window_seconds,
        )
    except KeyHeld:
        assert claim is not None  # noqa: S101  (only a keyed turn claims)
        return _retry_turn(session, claim=claim, message=message, settings=settings)
    except (ChatRateLimited, NotFound):
        # Either may still be a retry, which the key answers first, as for any retry (one more
        # look at the key, on these paths only): a 429 when an attempt racing this one at the
        # same key took the user's last turn of the window and claimed the key after this
        # statement's snapshot; a 404 when the conversation has gone since the key recorded its
        # answer (replayed, or refused for another body).
        if claim is None:
            raise
        if read_key(session, user_id=user_id, key=claim.key, now=claim.now) is None:
            raise
        return _retry_turn(session, claim=claim, message=message, settings=settings)
    return _answer(session, turn, user_id=user_id, message=message, settings=settings, claim=claim)


def _answer(
    session: Session,
    turn: OpenedTurn,
    *,
    user_id: str,
    message: str,
    settings: Settings,
    claim: KeyClaim | None,
) -> ChatResponse:
    """Ask the assistant about the stored question and store its reply. If the conversation
    is deleted meanwhile, the turn is a 404 and so is every retry of its key."""
    # Bound to the question: each task write commits with its record, and a retry of this turn
    # replays what an earlier attempt recorded instead of writing again.
    tools = TaskTools(
        session=session,
        user_id=user_id,
        user_message_id=turn.user_message_id,
        recorded={step.step: step for step in turn.recorded_steps},
    )
    assistant = create_assistant(settings.chat_assistant, tools=tools)
    try:
        reply = assistant.reply(turn.history, message, user_id=user_id)
    except Exception as error:
        session.rollback()
        if claim is not None:
            release_lease(session, user_id=claim.user_id, key=claim.key, now=utc_now())
        if isinstance(error, AssistantFailed | AssistantUnavailable | AssistantTimedOut):
            count(ASSISTANT_ERRORS)  # a model's failure, already logged by its type
        if isinstance(error, (AppError, *DATABASE_UNAVAILABLE_ERRORS)):
            # A tool's statement the database could not serve (cancelled past its
            # statement_timeout, a lost connection) is the database's 503, not the assistant's.
            raise
        # Log the failure's type only: its message could quote the user's words.
        logger.error("assistant failed: %s", type(error).__name__)
        count(ASSISTANT_ERRORS)
        raise AssistantFailed() from error
    text = bounded_reply(reply.text, settings.chat_max_reply_chars)
    response = ChatResponse.model_validate(
        {
            "conversation_id": turn.conversation_id,
            "response": text,
            "tool_calls": reply.tool_calls,
        }
    )
    try:
        with _settled_if_gone(session, claim), _lease_released_on_database_error(session, claim):
            store.finish_turn(
                session,
                user_id=user_id,
                conversation_id=turn.conversation_id,
                reply_to_id=turn.user_message_id,
                content=text,
                tool_calls=reply.tool_calls,
                claim=claim,
                response=response.model_dump(mode="json") if claim is not None else None,
            )
    except TurnAlreadyAnswered:
        assert claim is not None  # noqa: S101
        # An attempt that overtook this one answered first: its response is the one.
        stored = read_key(session, user_id=claim.user_id, key=claim.key, now=utc_now())
        if stored is None or stored.response is None:
            raise IdempotencyKeyInProgress() from None
        return _replayed(stored)
    return response


@contextmanager
def _lease_released_on_database_error(session: Session, claim: KeyClaim | None) -> Iterator[None]:
    """A keyed turn whose reply the database could not store (a 503) ends its lease, so that
    the retry the 503 asks for answers the stored question instead of waiting for the lease
    (a 409 for 45 s). If the database cannot take that either, the lease runs out by itself."""
    try:
        yield
    except DATABASE_UNAVAILABLE_ERRORS:
        if claim is not None:
            with suppress(*DATABASE_UNAVAILABLE_ERRORS):
                session.rollback()
                release_lease(session, user_id=claim.user_id, key=claim.key, now=utc_now())
        raise


@contextmanager
def _settled_if_gone(session: Session, claim: KeyClaim | None) -> Iterator[None]:
    """A keyed turn whose conversation was deleted under it answers 404, and its key records
    that 404 so that a retry answers it at once instead of waiting for the lease."""
    try:
        yield
    except NotFound as error:
        if claim is not None:
            record_response(
                session,
                user_id=claim.user_id,
                key=claim.key,
                status_code=NotFound.status_code,
                response={"detail": error.detail},
            )
        raise


def _replayed(stored: StoredKey) -> ChatResponse:
    if stored.status_code == NotFound.status_code:
        raise NotFound(CONVERSATION_NOT_FOUND)
    return ChatResponse.model_validate(stored.response)


def _retry_turn(
    session: Session, *, claim: KeyClaim, message: str, settings: Settings
) -> ChatResponse:
    """A turn whose key is already held: replay, wait, or take over the unanswered question.
    Each look at the key is one small SELECT by primary key."""
    deadline = time.monotonic() + IN_PROGRESS_WAIT_SECONDS
    while True:
        now = utc_now()
        stored = read_key(session, user_id=claim.user_id, key=claim.key, now=now)
        if stored is None:
            raise IdempotencyKeyInProgress()  # held a moment ago, expired since: retry
        require_same_request(stored, claim.request_hash)
        if stored.response is not None:
            return _replayed(stored)
        if stored.locked_until is not None and stored.locked_until > now:
            if time.monotonic() >= deadline:
                raise IdempotencyKeyInProgress()
            time.sleep(IN_PROGRESS_POLL_SECONDS)
            continue
        with _settled_if_gone(session, claim):
            turn = store.take_over(
                session,
                user_id=claim.user_id,
                key=claim.key,
                now=now,
                lease_until=now + timedelta(seconds=TURN_LEASE_SECONDS),
                window=settings.chat_history_window,
            )
        if turn is not None:
            return _answer(
                session,
                turn,
                user_id=claim.user_id,
                message=message,
                settings=settings,
                claim=claim,
            )
        # Another retry took it over first: wait for its answer like any other.
