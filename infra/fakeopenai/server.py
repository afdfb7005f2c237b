"""The fake server: ``POST /v1/chat/completions`` (and ``GET /v1/models``) on 127.0.0.1.

Each request is recorded (its JSON body and headers), then answered by the next scripted
response if one is queued, else by :func:`fakeopenai.agent.scripted_agent`. A wrong API key gets
OpenAI's 401 whatever is scripted, as a real provider would answer.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fakeopenai.agent import scripted_agent

DEFAULT_MODEL = "fake-model"
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class ScriptedResponse:
    """One scripted answer: a JSON body (or raw bytes), a status, headers, a delay before it,
    or a connection dropped without any answer. With ``trickle_bytes``, the answer goes out that
    many bytes at a time, ``trickle_pause_seconds`` apart (from its status line, or from its body
    with ``trickle_body_only``)."""

    status: int = 200
    body: dict[str, Any] | None = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    drop_connection: bool = False
    trickle_bytes: int = 0
    trickle_pause_seconds: float = 0.0
    trickle_body_only: bool = False


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.body or {}).get("messages", []))


def completion(
    *,
    content: str | None,
    calls: list[dict[str, Any]] | None = None,
    model: str = DEFAULT_MODEL,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """A Chat Completions response body with one choice (``finish_reason``: what a model gives,
    ``"tool_calls"`` or ``"stop"`` unless said otherwise, such as ``"length"``)."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-fake-{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason or ("tool_calls" if calls else "stop"),
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def tool_call(name: str, arguments: dict[str, Any] | str) -> dict[str, Any]:
    """One tool call as the model sends it (``arguments`` is a JSON string on the wire)."""
    encoded = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "id": f"call_fake_{next(_ids)}",
        "type": "function",
        "function": {"name": name, "arguments": encoded},
    }


def reply(
    text: str, *, delay_seconds: float = 0.0, finish_reason: str | None = None
) -> ScriptedResponse:
    """A plain text answer (``finish_reason="length"``: cut at the request's output limit)."""
    return ScriptedResponse(
        body=completion(content=text, finish_reason=finish_reason), delay_seconds=delay_seconds
    )


def tool_calls(
    *calls: tuple[str, dict[str, Any] | str], delay_seconds: float = 0.0
) -> ScriptedResponse:
    """An answer that asks for these tool calls (name, arguments), in one round."""
    return ScriptedResponse(
        body=completion(content=None, calls=[tool_call(name, args) for name, args in calls]),
        delay_seconds=delay_seconds,
    )


def error(
    status: int, *, retry_after: str | None = None, message: str = "scripted error"
) -> ScriptedResponse:
    """An error in OpenAI's shape (429 with ``retry_after`` for a rate limit, 5xx, 401...)."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    # The SDK retries on its own when told to; the server says so only where a provider would.
    headers["x-should-retry"] = "false"
    return ScriptedResponse(
        status=status,
        body={"error": {"message": message, "type": "scripted", "code": str(status)}},
        headers=headers,
    )


def malformed(raw: bytes = b'{"choices": [ this is not json') -> ScriptedResponse:
    """A 200 whose body is not the JSON it claims to be."""
    return ScriptedResponse(raw=raw)


def trickle(
    text: str,
    *,
    pause_seconds: float = 0.2,
    chunk_bytes: int = 1,
    body_only: bool = False,
) -> ScriptedResponse:
    """A valid text answer sent ``chunk_bytes`` at a time, ``pause_seconds`` apart: every read
    gets data well within a read timeout while the whole answer takes as long as the provider
    likes (status line and headers included, unless ``body_only``)."""
    return ScriptedResponse(
        body=completion(content=text),
        trickle_bytes=chunk_bytes,
        trickle_pause_seconds=pause_seconds,
        trickle_body_only=body_only,
    )


def hang(seconds: float = 60.0) -> ScriptedResponse:
    """No answer for ``seconds`` (the client times out first), then the connection drops."""
    return ScriptedResponse(delay_seconds=seconds, drop_connection=True)


class FakeOpenAI:
    """The server, on a free port (or ``port``), serving from a thread. Use as a context
    manager, or call :meth:`start` / :meth:`stop`."""

    def __init__(self, *, api_key: str | None = "test-key", port: int = 0) -> None:
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self._script: deque[ScriptedResponse] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *responses: ScriptedResponse) -> None:
        """Queue responses; each request takes the next one (then the scripted agent answers)."""
        with self._lock:
            self._script.extend(responses)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()

    @property
    def pending(self) -> int:
        """How many scripted responses are still queued."""
        with self._lock:
            return len(self._script)

    def start(self) -> FakeOpenAI:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next(self, body: dict[str, Any] | None) -> ScriptedResponse:
        with self._lock:
            if self._script:
                return self._script.popleft()
        model = str((body or {}).get("model") or DEFAULT_MODEL)
        content, calls = scripted_agent((body or {}).get("messages", []))
        built = [tool_call(name, arguments) for name, arguments in calls]
        return ScriptedResponse(body=completion(content=content, calls=built, model=model))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as separate writes: without this, Nagle's algorithm and
            # the client's delayed ACK add 40 ms to every answer.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the tests assert on fake.requests instead

            def _send_json(self, status: int, payload: Any, headers: dict[str, str]) -> None:
                self._send(status, json.dumps(payload).encode(), headers)

            def _trickle(self, scripted: ScriptedResponse, data: bytes) -> None:
                head = [f"HTTP/1.1 {scripted.status} {self.responses[scripted.status][0]}"]
                head.append("Content-Type: application/json")
                head.append(f"Content-Length: {len(data)}")
                head.extend(f"{name}: {value}" for name, value in scripted.headers.items())
                head_bytes = ("\r\n".join(head) + "\r\n\r\n").encode()
                size = scripted.trickle_bytes
                try:
                    if scripted.trickle_body_only:
                        self.wfile.write(head_bytes)
                    else:
                        data = head_bytes + data
                    for start in range(0, len(data), size):
                        if fake._stopping.wait(scripted.trickle_pause_seconds):
                            return
                        self.wfile.write(data[start : start + size])
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (its deadline): fine

            def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (a timeout): fine

            def do_GET(self) -> None:
                if self.path.rstrip("/") != "/v1/models":
                    self._send_json(404, {"error": {"message": "not found"}}, {})
                    return
                model = {"id": DEFAULT_MODEL, "object": "model", "owned_by": "fake"}
                self._send_json(200, {"object": "list", "data": [model]}, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                headers = {name.lower(): value for name, value in self.headers.items()}
                with fake._lock:
                    fake.requests.append(RecordedRequest(self.path, headers, body))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send_json(404, {"error": {"message": "not found"}}, {})
                    return
                if fake.api_key is not None and (
                    headers.get("authorization") != f"Bearer {fake.api_key}"
                ):
                    self._send_json(
                        401,
                        {
                            "error": {
                                "message": "Incorrect API key provided.",
                                "type": "invalid_request_error",
                                "code": "invalid_api_key",
                            }
                        },
                        {},
                    )
                    return
                if not isinstance(body, dict):
                    self._send_json(400, {"error": {"message": "body is not JSON"}}, {})
                    return
                scripted = fake._next(body)
                if scripted.delay_seconds:
                    fake._stopping.wait(scripted.delay_seconds)
                if scripted.drop_connection:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if scripted.trickle_bytes:
                    self._trickle(scripted, json.dumps(scripted.body).encode())
                elif scripted.raw is not None:
                    self._send(scripted.status, scripted.raw, scripted.headers)
                else:
                    self._send_json(scripted.status, scripted.body, scripted.headers)

        return Handler


def refused_base_url() -> str:
    """A base URL on which nothing listens (a port just freed): connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
