"""A small Lambda Runtime API (2018-06-01) for one function: the four calls a runtime interface
client makes outside SnapStart.

* ``GET  /2018-06-01/runtime/invocation/next``: blocks until an event is queued, then returns it
  with the ``Lambda-Runtime-*`` headers. Its first call marks the end of the init phase.
* ``POST /2018-06-01/runtime/invocation/{id}/response`` and ``.../{id}/error``: the outcome.
* ``POST /2018-06-01/runtime/init/error``: the function failed to initialise.

Everything is recorded with its time on :class:`Invocations`, which the check polls.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:{name}"


@dataclass
class Outcome:
    """What the runtime posted for one invocation (or for its init)."""

    kind: str  # "response", "error" or "init_error"
    body: Any
    at: float


@dataclass
class Invocations:
    """The state shared by the server's threads and the check."""

    function: str
    deadline_seconds: float = 300.0
    events: queue.Queue[tuple[str, dict[str, Any]]] = field(default_factory=queue.Queue)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    init_error: Outcome | None = None
    ready_at: float | None = None  # first GET .../next: the init phase is over
    sent_at: dict[str, float] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)
    closed: threading.Event = field(default_factory=threading.Event)

    def invoke(self, event: dict[str, Any]) -> str:
        """Queue ``event`` for the next ``GET .../next``; returns its request id."""
        request_id = str(uuid.uuid4())
        self.events.put((request_id, event))
        return request_id

    def record(self, request_id: str | None, outcome: Outcome) -> None:
        with self.changed:
            if request_id is None:
                self.init_error = outcome
            else:
                self.outcomes[request_id] = outcome
            self.changed.notify_all()


class _Handler(BaseHTTPRequestHandler):
    server: RuntimeApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the check prints its own summary."""

    def _reply(self, status: HTTPStatus, body: bytes = b"", headers: dict[str, str] | None = None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode("utf-8", "replace")

    def do_GET(self) -> None:
        state = self.server.state
        if self.path != f"{PREFIX}/invocation/next":
            self._reply(HTTPStatus.NOT_FOUND)
            return
        with state.changed:
            if state.ready_at is None:
                state.ready_at = time.monotonic()
                state.changed.notify_all()
        while not state.closed.is_set():
            try:
                request_id, event = state.events.get(timeout=0.2)
            except queue.Empty:
                continue
            deadline_ms = int((time.time() + state.deadline_seconds) * 1000)
            state.sent_at[request_id] = time.monotonic()
            self._reply(
                HTTPStatus.OK,
                json.dumps(event).encode(),
                {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN.format(name=state.function),
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
                },
            )
            return

    def do_POST(self) -> None:
        state = self.server.state
        body = self._read_json()
        now = time.monotonic()
        if self.path == f"{PREFIX}/init/error":
            state.record(None, Outcome("init_error", body, now))
        elif self.path.startswith(f"{PREFIX}/invocation/"):
            request_id, _, kind = self.path.removeprefix(f"{PREFIX}/invocation/").partition("/")
            if kind not in {"response", "error"}:
                self._reply(HTTPStatus.NOT_FOUND)
                return
            state.record(request_id, Outcome(kind, body, now))
        else:
            self._reply(HTTPStatus.NOT_FOUND)
            return
        self._reply(HTTPStatus.ACCEPTED, b'{"status":"OK"}', {"Content-Type": "application/json"})


class RuntimeApi(ThreadingHTTPServer):
    """The Runtime API of one function on 127.0.0.1 (an ephemeral port: ``address``)."""

    daemon_threads = True

    def __init__(self, state: Invocations) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A runtime killed while it waits for its next event drops its connection: expected."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def address(self) -> str:
        host, port = self.server_address[:2]
        return f"{host!s}:{port}"

    def __enter__(self) -> RuntimeApi:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.state.closed.set()
        self.shutdown()
        self.server_close()
