"""An HTTP server that plays API Gateway for the functions of ``template.yaml``.

Functions run the way Lambda runs them: each function has its own containers, each container
serves one invocation at a time, and a new one starts when every container of the function is
busy (up to ``CONTAINERS_PER_FUNCTION``). So a chat turn waiting on a slow model holds one chat
container and delays no other request. A container here is a worker thread with its own event
loop (Mangum's loop belongs to one thread); unlike Lambda, the containers of one function share
its module (imported once, on first use) and so its settings and database engine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from devserver.cors import read_cors_policy
from devserver.events import LambdaContext, decode_response_body, http_api_event
from devserver.template import Route, import_function, read_routes

logger = logging.getLogger("devserver")
_T = TypeVar("_T")

API_GATEWAY_MAX_BODY = 10 * 1024 * 1024
"""HTTP APIs refuse larger payloads before any function runs."""
CONTAINERS_PER_FUNCTION = 8
"""Concurrent invocations of one function before the next one waits (Lambda's would scale on)."""

GATEWAY_SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
}
"""What every function's response carries (todo_core.api), on the server's own answers too."""

_QUERY_STRING = re.compile(r"\?[^\s\"']*")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,8}")


class _Refused(Exception):
    """The request cannot be framed as API Gateway would: answer ``status`` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Match:
    route: Route
    path_parameters: dict[str, str]


class Gateway:
    """Routes requests to functions as API Gateway does, and invokes their handlers."""

    def __init__(self, template_path: Path) -> None:
        self.template_path = template_path
        self.routes = read_routes(template_path)
        self.cors = read_cors_policy(template_path)
        self._modules: dict[Path, ModuleType] = {}
        self._import_lock = threading.Lock()
        self._containers = FunctionContainers()

    def match(self, method: str, path: str) -> Match | None:
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found and route.method in (method.upper(), "ANY"):
                return Match(route, found.groupdict())
        return None

    def module_for(self, route: Route) -> ModuleType:
        """Import the function's module once, under a name of its own (all are app.py)."""
        with self._import_lock:  # two containers starting at once import it once
            if route.source not in self._modules:
                self._modules[route.source] = import_function(route.source, f"fn_{route.function}")
            return self._modules[route.source]

    def invoke(self, route: Route, event: dict[str, Any]) -> dict[str, Any]:
        """Call the function's handler with ``event``, in one of the function's containers."""

        def call() -> dict[str, Any]:
            module = self.module_for(route)
            handler = getattr(module, route.handler.rpartition(".")[2])
            result: dict[str, Any] = handler(event, LambdaContext(function_name=route.function))
            return result

        return self._containers.run(route.function, call)

    def openapi(self) -> dict[str, Any]:
        """One OpenAPI document for every route, merged from each function's own app."""
        document: dict[str, Any] = {
            "openapi": "3.1.0",
            "info": {"title": "Todo API", "version": "1.0.0"},
            "paths": {},
            "components": {},
        }

        def build() -> None:
            for route in self.routes:
                spec = self.module_for(route).app.openapi()
                for path, operations in spec.get("paths", {}).items():
                    document["paths"].setdefault(path, {}).update(operations)
                for kind, entries in spec.get("components", {}).items():
                    document["components"].setdefault(kind, {}).update(entries)

        self._containers.run("openapi", build)
        return document

    def close(self) -> None:
        self._containers.close()


class FunctionContainers:
    """Each function's containers: a pool of threads per function, each with its own event
    loop, each running one invocation at a time; a thread is added when all are busy."""

    def __init__(self, per_function: int = CONTAINERS_PER_FUNCTION) -> None:
        self.per_function = per_function
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._lock = threading.Lock()

    def _pool(self, function: str) -> ThreadPoolExecutor:
        with self._lock:
            pool = self._pools.get(function)
            if pool is None:
                pool = ThreadPoolExecutor(
                    max_workers=self.per_function,
                    thread_name_prefix=f"container-{function}",
                    initializer=self._start_container,
                )
                self._pools[function] = pool
            return pool

    def _start_container(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        with self._lock:
            self._loops.append(loop)

    def run(self, function: str, call: Callable[[], _T]) -> _T:
        """Run ``call`` in an idle container of ``function`` (a new one if all are busy)."""
        return self._pool(function).submit(call).result()

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=True)
        with self._lock:
            loops, self._loops = self._loops, []
        for loop in loops:
            loop.close()


_DOCS_PAGE = """<!doctype html>
<html><head><title>Todo API</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>
"""


class _RequestHandler(BaseHTTPRequestHandler):
    gateway: Gateway
    server_version = "todo-devserver"
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: with Nagle's algorithm the body waits for the client's
    # delayed ACK of the headers, 40 ms on Linux, on every keep-alive response.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, CONNECT, PROPFIND...) gets what API Gateway answers for a
        # method no route declares: 404, not http.server's 501.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        # Never a query string (nor a malformed request line's): a token sent as ?token=...
        # must not land in the log.
        line = _QUERY_STRING.sub("?[query]", format % args)
        logger.info("%s %s", self.address_string(), line)

    def _reply(self, status: int, body: bytes, headers: dict[str, str], cookies: list[str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        for cookie in cookies:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _gateway_error(self, status: int, message: str) -> None:
        """An answer of the gateway itself, readable by the allowed origin like any other."""
        body = json.dumps({"message": message}).encode()
        headers = {"content-type": "application/json", **GATEWAY_SECURITY_HEADERS}
        headers.update(self.gateway.cors.response_headers(self.headers.get("Origin")))
        self._reply(status, body, headers, [])

    def _request_body(self) -> bytes:
        """The body, framed by Content-Length or chunked as API Gateway accepts it. Raise
        _Refused for what it refuses: a length that is not plain digits, both framings at
        once, another transfer coding, a body over the payload limit."""
        lengths = self.headers.get_all("Content-Length") or []
        codings = ",".join(self.headers.get_all("Transfer-Encoding") or []).lower()
        if codings:
            if lengths or [c.strip() for c in codings.split(",")] != ["chunked"]:
                raise _Refused(400, "Bad Request")
            return self._read_chunked()
        if not lengths:
            return b""
        text = lengths[0].strip()
        if len(set(lengths)) != 1 or not (text.isascii() and text.isdigit()):
            raise _Refused(400, "Bad Request")
        length = int(text)
        if length > API_GATEWAY_MAX_BODY:
            raise _Refused(413, "Request Entity Too Large")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_line):
                raise _Refused(400, "Bad Request")
            size = int(size_line, 16)
            if size == 0:
                break
            if len(body) + size > API_GATEWAY_MAX_BODY:
                raise _Refused(413, "Request Entity Too Large")
            body += self.rfile.read(size)
            if self.rfile.read(2) != b"\r\n":
                raise _Refused(400, "Bad Request")
        while self.rfile.readline(8192).strip():  # trailer fields, ignored
            pass
        return bytes(body)

    def _event_headers(self) -> dict[str, str]:
        """The request's headers as API Gateway passes them on: a repeated header's values
        joined with commas (cookies with "; "), not the last one alone."""
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            if key in headers:
                headers[key] += ("; " if key == "cookie" else ",") + value
            else:
                headers[key] = value
        return headers

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        try:
            body = self._request_body()
        except _Refused as refused:
            self.close_connection = True  # where the next request would start is unknown
            self._gateway_error(refused.status, refused.message)
            return

        if self.command == "GET" and url.path == "/openapi.json":
            spec = json.dumps(self.gateway.openapi()).encode()
            self._reply(200, spec, {"content-type": "application/json"}, [])
            return
        if self.command == "GET" and url.path == "/docs":
            self._reply(200, _DOCS_PAGE.encode(), {"content-type": "text/html; charset=utf-8"}, [])
            return

        origin = self.headers.get("Origin")
        if self.command == "OPTIONS" and self.headers.get("Access-Control-Request-Method"):
            # API Gateway answers CORS preflights itself, before any route or function.
            headers = {**GATEWAY_SECURITY_HEADERS, **self.gateway.cors.preflight_headers(origin)}
            self._reply(204, b"", headers, [])
            return
        match = self.gateway.match(self.command, url.path)
        if match is None:
            self._gateway_error(404, "Not Found")
            return
        event = http_api_event(
            method=self.command,
            raw_path=url.path,
            route_key=match.route.route_key,
            path_parameters={k: unquote(v) for k, v in match.path_parameters.items()},
            raw_query=url.query,
            headers=self._event_headers(),
            body=body,
            source_ip=self.client_address[0],
            domain_name=self.headers.get("Host", "localhost"),
        )
        try:
            response = self.gateway.invoke(match.route, event)
        except Exception:
            logger.exception("function %s failed", match.route.function)
            self._gateway_error(500, "Internal Server Error")
            return
        headers = dict(response.get("headers") or {})
        headers.update(self.gateway.cors.response_headers(origin))
        self._reply(
            int(response.get("statusCode", 200)),
            decode_response_body(response),
            headers,
            list(response.get("cookies") or []),
        )


def make_server(gateway: Gateway, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server bound to ``host:port`` that serves ``gateway``'s routes."""
    handler = type("RequestHandler", (_RequestHandler,), {"gateway": gateway})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
