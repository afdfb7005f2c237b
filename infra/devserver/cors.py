"""API Gateway's CORS, as template.yaml configures it on the HTTP API: preflights are answered
by the gateway itself, and only the configured origin gets ``Access-Control-Allow-Origin``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devserver.template import load_template


@dataclass(frozen=True)
class CorsPolicy:
    allow_origins: frozenset[str]
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...]
    max_age: int | None

    def allows(self, origin: str | None) -> bool:
        return origin is not None and (origin in self.allow_origins or "*" in self.allow_origins)

    def preflight_headers(self, origin: str | None) -> dict[str, str]:
        """Headers of the gateway's own answer to an OPTIONS preflight (none for other origins)."""
        if origin is None or not self.allows(origin):
            return {}
        headers = {
            "access-control-allow-origin": origin,
            "access-control-allow-methods": ",".join(self.allow_methods),
            "access-control-allow-headers": ",".join(self.allow_headers),
            "vary": "origin",
        }
        if self.max_age is not None:
            headers["access-control-max-age"] = str(self.max_age)
        return headers

    def response_headers(self, origin: str | None) -> dict[str, str]:
        """Headers the gateway adds to a function's response for a cross-origin request."""
        if origin is None or not self.allows(origin):
            return {}
        headers = {"access-control-allow-origin": origin, "vary": "origin"}
        if self.expose_headers:
            headers["access-control-expose-headers"] = ",".join(self.expose_headers)
        return headers


def _resolve(value: Any, parameters: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """A template value: a literal, or ``!Ref Parameter`` (``FRONTEND_ORIGIN`` overrides
    ``FrontendOrigin``'s default locally, as ``--parameter-overrides`` does on deploy)."""
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        override = environ.get("FRONTEND_ORIGIN") if name == "FrontendOrigin" else None
        return str(override or parameters.get(name, {}).get("Default", ""))
    return str(value)


def read_cors_policy(template_path: Path, environ: Mapping[str, str] = os.environ) -> CorsPolicy:
    """The HTTP API's CORS configuration; no configuration means no cross-origin access."""
    template = load_template(template_path)
    parameters = template.get("Parameters", {})
    config: dict[str, Any] = {}
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::HttpApi":
            config = resource.get("Properties", {}).get("CorsConfiguration") or {}
    return CorsPolicy(
        allow_origins=frozenset(
            _resolve(o, parameters, environ) for o in config.get("AllowOrigins", [])
        ),
        allow_methods=tuple(config.get("AllowMethods", [])),
        allow_headers=tuple(config.get("AllowHeaders", [])),
        expose_headers=tuple(config.get("ExposeHeaders", [])),
        max_age=config.get("MaxAge"),
    )
