"""A small OpenAI-compatible Chat Completions server for tests, the dev server and benchmarks.

Real HTTP on 127.0.0.1, so the official SDK is exercised end to end. Responses are scripted
(text, tool calls, delays, errors, malformed bodies, hangs, answers trickled a few bytes at a
time) or, when nothing is scripted, come from a rule-based "scripted agent" that understands
simple task requests.
"""

from fakeopenai.server import (
    FakeOpenAI,
    ScriptedResponse,
    error,
    hang,
    malformed,
    reply,
    tool_calls,
    trickle,
)

__all__ = [
    "FakeOpenAI",
    "ScriptedResponse",
    "error",
    "hang",
    "malformed",
    "reply",
    "tool_calls",
    "trickle",
]
