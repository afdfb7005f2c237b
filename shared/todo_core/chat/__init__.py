"""Chat: conversations, their messages, the stateless chat turn and the assistant."""
