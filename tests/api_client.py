"""Calls the functions exactly as API Gateway does: the route is looked up in template.yaml, a
real HTTP API payload 2.0 event is built, and the function's own ``handler`` is invoked."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from devserver.events import decode_response_body, http_api_event
from devserver.server import Gateway


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    function: str = ""
    event: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


class ApiClient:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def request(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Response:
        split = urlsplit(url)
        raw_query = split.query or (urlencode(params) if params else "")
        all_headers = {"user-agent": "pytest"}
        if token is not None:
            all_headers["authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers["content-type"] = "application/json"
        if body is not None:
            all_headers["content-length"] = str(len(body))
        all_headers.update(headers or {})
        match = self.gateway.match(method, split.path)
        if match is None:
            return Response(404, {}, b'{"message":"Not Found"}')
        event = http_api_event(
            method=method,
            raw_path=split.path,
            route_key=match.route.route_key,
            path_parameters=match.path_parameters,
            raw_query=raw_query,
            headers=all_headers,
            body=body,
        )
        result = self.gateway.invoke(match.route, event)
        return Response(
            status=int(result["statusCode"]),
            headers={k.lower(): v for k, v in (result.get("headers") or {}).items()},
            body=decode_response_body(result),
            function=match.route.function,
            event=event,
        )

    def get(self, url: str, **kwargs: Any) -> Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Response:
        return self.request("DELETE", url, **kwargs)
