"""A JWKS endpoint on 127.0.0.1 for the auth tests: serves whatever key set the test puts in it,
counts the fetches, and can be made to fail (HTTP error, garbage, a hang, a redirect)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Behaviour = Literal["serve", "http_error", "garbage", "hang", "redirect", "huge"]


class JwksServer:
    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.behaviour: Behaviour = "serve"
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                status, body, headers = server.respond()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._stop_hanging = threading.Event()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/api/auth/jwks"

    def respond(self) -> tuple[int, bytes, dict[str, str]]:
        json_type = {"Content-Type": "application/json"}
        if self.behaviour == "http_error":
            return 500, b'{"error":"boom"}', json_type
        if self.behaviour == "garbage":
            return 200, b"<html>not json</html>", {"Content-Type": "text/html"}
        if self.behaviour == "redirect":
            return 302, b"", {"Location": "http://127.0.0.1:9/api/auth/jwks"}
        if self.behaviour == "huge":
            # The real keys, padded past the size limit: only the limit refuses this document.
            padding = {"kid": "padding", "kty": "unknown", "pad": "x" * 300_000}
            document = {"keys": [*self.jwks["keys"], padding]}
            return 200, json.dumps(document).encode(), json_type
        if self.behaviour == "hang":
            self._stop_hanging.wait(10)
        return 200, json.dumps(self.jwks).encode(), json_type

    def close(self) -> None:
        self._stop_hanging.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
