"""The assistant interface, and how the chat turn picks one.

An assistant takes the conversation's history (oldest first) and the new message and returns a
reply: text plus the tool calls it made. The built-in one is deterministic; an LLM agent plugs in
by implementing :class:`Assistant` and registering a factory under a ``CHAT_ASSISTANT`` name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlmodel import Session

from todo_core.chat.store import HistoryMessage
from todo_core.chat.tools import TaskTools
from todo_core.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class AssistantReply:
    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


class Assistant(Protocol):
    def reply(
        self, history: Sequence[HistoryMessage], message: str, *, user_id: str
    ) -> AssistantReply: ...


AssistantFactory = Callable[[TaskTools], Assistant]


def _builtin(tools: TaskTools) -> Assistant:
    from todo_core.chat.builtin_assistant import BuiltinAssistant  # noqa: PLC0415

    return BuiltinAssistant(tools)


ASSISTANTS: dict[str, AssistantFactory] = {"builtin": _builtin}
"""Assistant factories by ``CHAT_ASSISTANT`` name."""


def create_assistant(name: str, *, session: Session, user_id: str) -> Assistant:
    """The assistant named ``name``, with the user's task tools bound to ``session``."""
    try:
        factory = ASSISTANTS[name]
    except KeyError:
        known = ", ".join(sorted(ASSISTANTS))
        raise ConfigurationError(f"CHAT_ASSISTANT={name!r} is not one of: {known}") from None
    return factory(TaskTools(session=session, user_id=user_id))
