"""Every table model, imported in one place for the migrations' metadata."""

from todo_core.chat.models import Conversation, Message
from todo_core.chat.rate import ChatRate
from todo_core.chat.tool_steps import ChatToolStep
from todo_core.idempotency import IdempotencyKey
from todo_core.tasks.models import Task

__all__ = ["ChatRate", "ChatToolStep", "Conversation", "IdempotencyKey", "Message", "Task"]
