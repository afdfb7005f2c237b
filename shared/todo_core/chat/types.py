"""What an assistant exchanges with the chat turn: the history it reads, the reply it returns,
and the interface it implements. No SQL, no HTTP: an assistant depends on this module only (and
on :class:`~todo_core.chat.tools.TaskTools` to act on the user's tasks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

REPLY_CUT_MARKER = " […]"
"""Ends a reply that was cut (to ``CHAT_MAX_REPLY_CHARS``, or by the model's output limit): the
reader sees that text is missing."""


class Role(StrEnum):
    user = "user"
    assistant = "assistant"


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    """A stored message as the assistant sees it."""

    id: int
    role: Role
    content: str
    tool_calls: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class AssistantReply:
    """The assistant's answer: its text and the tool calls it made (``{name, arguments,
    result}`` each, as :class:`~todo_core.chat.tools.TaskTools` records them)."""

    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


class Assistant(Protocol):
    def reply(
        self, history: Sequence[HistoryMessage], message: str, *, user_id: str
    ) -> AssistantReply:
        """Answer ``message`` given the conversation's ``history`` (oldest first)."""
        ...
