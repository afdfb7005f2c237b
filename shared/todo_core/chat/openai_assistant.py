"""``CHAT_ASSISTANT=openai``: a model behind any OpenAI-compatible Chat Completions endpoint
(OpenAI, OpenRouter, Gemini's OpenAI-compatible endpoint, Groq, Ollama, vLLM), with the task
tools as function tools.

A turn loops: model -> tool calls -> model -> ... -> text, at most ``CHAT_MAX_TOOL_ROUNDS`` model
calls that ask for tools. Every model call shares one budget, ``CHAT_MODEL_TIMEOUT_SECONDS``,
which fits inside the chat function's timeout. The budget is a deadline for the turn's model
calls as a whole, not a timeout per read: the SDK's client sends through
:mod:`todo_core.chat.model_deadline`, so every connect, write and read waits at most what is left
of it, and a provider that trickles its answer a few bytes at a time is cut off at the deadline
like one that never answers. The SDK's own retries are off (its default would wait up to 60 s on
a Retry-After) and this module retries a rate limit, a 5xx (or 408/409) or a refused connection
itself, only while the wait still fits the budget.

Each failure becomes a typed error (see the README's table): a timeout 504, a provider that is
rate limiting, failing or unreachable 503 with Retry-After, a rejected key, a malformed answer or
too many rounds 502. Logs name the failure's type and status only: never the message, the
model's text or the key. Only the chat function imports this module (and so the SDK).
"""

from __future__ import annotations

import contextlib
import email.utils
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import openai
from openai import DefaultHttpxClient, OpenAI

from todo_core.chat.model_deadline import DeadlineTransport, deadline
from todo_core.chat.model_messages import (
    ModelMessage,
    assistant_tool_round,
    history_messages,
    replayed_rounds,
    tool_message,
)
from todo_core.chat.tools import TOOL_SCHEMAS, TaskTools, tool_error
from todo_core.chat.types import REPLY_CUT_MARKER, AssistantReply, HistoryMessage
from todo_core.errors import AssistantFailed, AssistantTimedOut, AssistantUnavailable
from todo_core.observability import logger
from todo_core.settings import Settings
from todo_core.text import storable

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant that manages the user's todo list with the tools you are given."
    " Use a tool for every change; refer to tasks by the ids the tools return; when the user"
    " says 'it' or 'that one', they mean the task of the most recent tool result. Keep answers"
    " short."
)
RETRY_AFTER_DEFAULT_SECONDS = 2
RETRY_AFTER_MAX_SECONDS = 60
INLINE_RETRY_MAX_SECONDS = 2
"""A provider asking for a longer wait than this gets it from the client (503 + Retry-After)."""
MINIMUM_CALL_SECONDS = 1.0
"""A retry is made only if this much of the budget is left after its wait."""

_clients: dict[tuple[str, str | None, float], OpenAI] = {}


class _HttpClient(DefaultHttpxClient):
    """The SDK's default HTTP client (its limits and redirects) on the deadline's transport;
    closed when dropped (a rotated key's), as the SDK closes the one it makes itself."""

    def __init__(self) -> None:
        super().__init__(transport=DeadlineTransport())

    def __del__(self) -> None:
        if not self.is_closed:
            with contextlib.suppress(Exception):
                self.close()


def client_for(settings: Settings) -> OpenAI:
    """One client per container (and per key: a rotated key gets a new one), so its connection
    pool and TLS sessions serve every warm turn; its transport holds each call to the turn's
    deadline."""
    assert settings.openai_api_key is not None  # noqa: S101  (settings require it)
    cache_key = (
        settings.openai_api_key,
        settings.openai_base_url,
        settings.chat_model_timeout_seconds,
    )
    client = _clients.get(cache_key)
    if client is None:
        _clients.clear()
        client = OpenAI(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            timeout=settings.chat_model_timeout_seconds,
            max_retries=0,
            http_client=_HttpClient(),
        )
        _clients[cache_key] = client
    return client


def _header_seconds(value: str) -> float | None:
    """A Retry-After value in seconds from now: delay-seconds, or an HTTP-date (RFC 9110 allows
    both); None for anything else."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" (RFC 5322): UTC, of no stated place
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()


def _retry_after_seconds(error: openai.APIStatusError) -> int:
    headers = error.response.headers
    raw_ms = headers.get("retry-after-ms")
    raw = headers.get("retry-after")
    seconds: float | None = None
    if raw_ms:
        with contextlib.suppress(ValueError):
            seconds = float(raw_ms) / 1000
    elif raw:
        seconds = _header_seconds(raw)
    if seconds is None or not math.isfinite(seconds):
        return RETRY_AFTER_DEFAULT_SECONDS
    return min(RETRY_AFTER_MAX_SECONDS, max(1, math.ceil(seconds)))


def _transient(status: int) -> bool:
    """A provider's status that a later attempt may not meet: a request timeout (408), a
    conflict (409), a rate limit (429), a failure (5xx); the statuses the SDK itself retries."""
    return status in (408, 409, 429) or status >= 500


class _Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


class OpenAIAssistant:
    """The model, its tools bound to one user's :class:`TaskTools`."""

    def __init__(self, tools: TaskTools, settings: Settings, client: OpenAI) -> None:
        self.tools = tools
        self.settings = settings
        self.client = client

    def reply(
        self, history: Sequence[HistoryMessage], message: str, *, user_id: str
    ) -> AssistantReply:
        messages: list[ModelMessage] = [
            {
                "role": "system",
                "content": self.settings.chat_system_prompt or DEFAULT_SYSTEM_PROMPT,
            },
            *history_messages(history, budget_chars=self.settings.chat_history_chars),
            {"role": "user", "content": message},
        ]
        # A retried turn: the calls the first attempt made (and recorded) are past rounds here.
        replayed = self.tools.resume()
        if replayed and self.tools.user_message_id is not None:
            messages.extend(replayed_rounds(self.tools.user_message_id, replayed))
        budget = _Budget(self.settings.chat_model_timeout_seconds)
        while True:
            answer, finish_reason = self._complete(messages, budget)
            cut = finish_reason == "length"  # stopped at CHAT_MODEL_MAX_OUTPUT_TOKENS
            calls = answer.tool_calls or []
            if not calls:
                # A model's text may hold what PostgreSQL cannot store (NUL, a lone surrogate).
                text = storable(answer.content or "").strip()
                if not text:
                    if cut:
                        logger.error("model reached its output limit before answering")
                    else:
                        logger.error("model answered with neither text nor tool calls")
                    raise AssistantFailed()
                if cut:  # the reader sees that text is missing, as for CHAT_MAX_REPLY_CHARS
                    logger.warning("model answer cut at its output limit")
                    text += REPLY_CUT_MARKER
                return AssistantReply(text, list(self.tools.calls))
            # The rounds are the turn's: a retry continues after the recorded ones, and once
            # they are spent its model call must answer in text (its tools are not run).
            if self.tools.round >= self.settings.chat_max_tool_rounds:
                logger.error(
                    "model asked for tools more than %d rounds",
                    self.settings.chat_max_tool_rounds,
                )
                raise AssistantFailed("The assistant did not finish; your message was saved")
            self._run_round(messages, calls, budget)
            self.tools.round += 1

    def _run_round(self, messages: list[ModelMessage], calls: list[Any], budget: _Budget) -> None:
        """Run one round of tool calls; append the model's request and each call's result.

        At most ``CHAT_MAX_TOOL_CALLS_PER_ROUND`` calls run; each one past it gets a
        ``too_many_calls`` error for an answer (a provider wants every call answered) and is not
        recorded: it did nothing, and recording it would let the model's output size the
        response. The budget is checked before each call, not only before each model call: a
        round of many calls stops at the deadline (504), the calls that ran recorded, so that
        a retry replays them and runs none of them again."""
        asked = [(str(c.id), str(c.function.name), c.function.arguments or "{}") for c in calls]
        # Echoed to the provider as UTF-8 JSON, which cannot carry a lone surrogate.
        echoed = [(storable(i), storable(n), storable(a)) for i, n, a in asked]
        messages.append(assistant_tool_round(echoed))
        limit = self.settings.chat_max_tool_calls_per_round
        if len(asked) > limit:
            logger.warning("model asked for %d tool calls in one round; %d run", len(asked), limit)
        for index, (call_id, name, arguments) in enumerate(asked):
            if index >= limit:
                result = tool_error(
                    "too_many_calls",
                    f"At most {limit} tool calls per answer: this one was not run. Ask for it"
                    " again in your next answer if it is still needed.",
                )
            else:
                if budget.remaining() <= 0:
                    logger.warning("model budget spent during its tool calls")
                    raise AssistantTimedOut()
                result = self.tools.call(name, arguments)
            messages.append(tool_message(call_id, result))

    def _output_limit(self, field: str) -> int | openai.Omit:
        """The call's output limit if the provider knows it as ``field``; else left out."""
        limit = self.settings.chat_model_max_output_tokens
        if limit and self.settings.chat_model_max_tokens_field == field:
            return limit
        return openai.omit

    def _complete(self, messages: list[ModelMessage], budget: _Budget) -> tuple[Any, Any]:
        """One model call (retried within the budget when the provider says so): the choice's
        message and its finish reason."""
        retries = self.settings.chat_model_max_retries
        while True:
            remaining = budget.remaining()
            if remaining <= 0:
                logger.warning("model budget spent before the call")
                raise AssistantTimedOut()
            try:
                with deadline(budget.deadline):
                    completion = self.client.chat.completions.create(
                        model=str(self.settings.chat_model),
                        messages=messages,  # type: ignore[arg-type]
                        tools=TOOL_SCHEMAS,  # type: ignore[arg-type]
                        timeout=remaining,
                        max_completion_tokens=self._output_limit("max_completion_tokens"),
                        max_tokens=self._output_limit("max_tokens"),
                    )
            except openai.APITimeoutError:
                logger.warning("model call timed out")
                raise AssistantTimedOut() from None
            except (openai.APIConnectionError, openai.APIStatusError) as error:
                status = getattr(error, "status_code", None)
                if isinstance(error, openai.APIStatusError) and not _transient(error.status_code):
                    # 401/403 (the key), 400/404/422 (the model name, the request): retrying
                    # with the same configuration cannot help.
                    logger.error(
                        "model refused the call: %s status=%s", type(error).__name__, status
                    )
                    raise AssistantFailed() from None
                wait = (
                    _retry_after_seconds(error)
                    if isinstance(error, openai.APIStatusError)
                    else RETRY_AFTER_DEFAULT_SECONDS
                )
                logger.warning("model unavailable: %s status=%s", type(error).__name__, status)
                # A short wait that fits the budget is spent here; a long one is the client's.
                if (
                    retries > 0
                    and wait <= INLINE_RETRY_MAX_SECONDS
                    and wait + MINIMUM_CALL_SECONDS <= budget.remaining()
                ):
                    retries -= 1
                    time.sleep(wait)
                    continue
                raise AssistantUnavailable(retry_after_seconds=wait) from None
            except (openai.APIResponseValidationError, ValueError) as error:
                logger.error("model answer unreadable: %s", type(error).__name__)
                raise AssistantFailed() from None
            return _first_message(completion)


def _first_message(completion: Any) -> tuple[Any, Any]:
    try:
        choice = completion.choices[0]
        message = choice.message
    except (AttributeError, IndexError, TypeError):
        choice = message = None
    if message is None:
        logger.error("model answer has no message")
        raise AssistantFailed()
    for call in message.tool_calls or []:
        if getattr(call, "function", None) is None or not getattr(call, "id", None):
            logger.error("model answer has a malformed tool call")
            raise AssistantFailed()
    return message, getattr(choice, "finish_reason", None)


def create_openai_assistant(tools: TaskTools, settings: Settings) -> OpenAIAssistant:
    return OpenAIAssistant(tools, settings, client_for(settings))
