"""How the chat turn picks its assistant: factories by ``CHAT_ASSISTANT`` name.

The interface an assistant implements, and what it exchanges with the turn, are in
:mod:`todo_core.chat.types`. The built-in assistant is deterministic; an LLM agent plugs in by
implementing :class:`~todo_core.chat.types.Assistant` and registering a factory here.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from todo_core.chat.tools import TaskTools
from todo_core.chat.types import Assistant
from todo_core.errors import ConfigurationError

AssistantFactory = Callable[[TaskTools], Assistant]


def _builtin(tools: TaskTools) -> Assistant:
    from todo_core.chat.builtin_assistant import BuiltinAssistant  # noqa: PLC0415

    return BuiltinAssistant(tools)


def _openai(tools: TaskTools) -> Assistant:
    from todo_core.chat.openai_assistant import create_openai_assistant  # noqa: PLC0415
    from todo_core.settings import get_settings  # noqa: PLC0415

    return create_openai_assistant(tools, get_settings())


ASSISTANTS: dict[str, AssistantFactory] = {"builtin": _builtin, "openai": _openai}
"""Assistant factories by ``CHAT_ASSISTANT`` name."""

# Only the chat function imports this module. The configured assistant's module is imported
# here, at init, which Lambda runs on two full vCPUs (and SnapStart snapshots), rather than in the
# first turn, which runs at a fraction of one: the SDK's imports for a model (about 0.7 s of CPU),
# the phrase tables' compiled patterns for the built-in assistant (about 6 ms, a first turn's
# whole budget). The other assistant's module is never loaded.
_CONFIGURED = os.environ.get("CHAT_ASSISTANT", "").strip() or "builtin"
if _CONFIGURED == "openai":
    import todo_core.chat.openai_assistant
elif _CONFIGURED == "builtin":
    import todo_core.chat.builtin_assistant  # noqa: F401


def create_assistant(name: str, *, tools: TaskTools) -> Assistant:
    """The assistant named ``name``, acting through ``tools`` (the user's, bound to the turn).
    The settings refuse a name that is not here when they load (before a turn stores anything),
    so the ConfigurationError below only guards a factory missing from this table."""
    try:
        factory = ASSISTANTS[name]
    except KeyError:
        known = ", ".join(sorted(ASSISTANTS))
        raise ConfigurationError(f"CHAT_ASSISTANT={name!r} is not one of: {known}") from None
    return factory(tools)
