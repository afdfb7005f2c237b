"""Routes each request on the path exactly as the client sent it.

Mangum hands FastAPI a percent-decoded path, so ``/tasks/1%2F`` became ``/tasks/1/``: an encoded
slash turned into a separator, the route no longer matched, and Starlette answered a 307 to a
Location built from the client's own Host and X-Forwarded-Proto. API Gateway has already chosen
the route by the raw path; the function matches the same raw path (HTTP API's ``rawPath``), so a
segment stays one segment, ``%2F`` and ``%2e%2e`` included, and is then refused (422) by the
parameter's own rules. Every id and user id the API accepts is plain ASCII that needs no
encoding, so nothing valid is lost.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class RouteOnRawPath:
    """ASGI middleware: the scope's ``path`` becomes the event's ``rawPath``, undecoded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        event = scope.get("aws.event")
        if scope["type"] == "http" and isinstance(event, dict):
            raw_path = event.get("rawPath")
            if isinstance(raw_path, str) and raw_path.startswith("/"):
                scope = {**scope, "path": raw_path, "raw_path": raw_path.encode("utf-8")}
        await self.app(scope, receive, send)
