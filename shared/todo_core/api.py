"""Builds each function's FastAPI app: one route, the shared error mapping, the body limit.

Every error becomes JSON in FastAPI's shape (``{"detail": ...}``): typed application errors with
their own status, an unreachable database as 503, anything unexpected as a 500 that is logged
without the request's content.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo_core import input_errors
from todo_core.db import DATABASE_UNAVAILABLE_ERRORS
from todo_core.errors import AppError, ConfigurationError, PayloadTooLarge, ServiceUnavailable
from todo_core.observability import logger
from todo_core.raw_path import RouteOnRawPath
from todo_core.settings import get_settings
from todo_core.warmup import warm_up

F = TypeVar("F", bound=Callable[..., Any])

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
]


class ErrorMessage(BaseModel):
    """The body of every error but 422 (whose ``detail`` is FastAPI's list of problems)."""

    detail: str


class ValidationProblem(BaseModel):
    """One item of FastAPI's 422 body."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationProblems(BaseModel):
    """FastAPI's 422 body: what was wrong with the request, field by field."""

    detail: list[ValidationProblem]


IDEMPOTENCY_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorMessage,
        "description": "The first request with this Idempotency-Key is still in progress",
    },
    422: {
        "model": ValidationProblems | ErrorMessage,
        "description": "Invalid input (a list of problems), or an Idempotency-Key already used"
        " with another request (a message)",
    },
}
"""What a route taking an ``Idempotency-Key`` may answer besides its own errors."""


def _documented(description: str, **extra: Any) -> dict[str, Any]:
    return {"model": ErrorMessage, "description": description, **extra}


AUTHENTICATED_ROUTE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _documented(
        "Missing, malformed, expired or badly signed token",
        headers={"WWW-Authenticate": {"schema": {"type": "string"}}},
    ),
    403: _documented("The token belongs to another user than the path names"),
    413: _documented("Request body too large"),
    503: _documented(
        "The database (or the JWKS endpoint) cannot be reached; retry",
        headers={"Retry-After": {"schema": {"type": "string"}}},
    ),
}
"""The errors any authenticated route may answer, for its OpenAPI document."""

PUBLIC_ROUTE_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: AUTHENTICATED_ROUTE_RESPONSES[413],
    503: AUTHENTICATED_ROUTE_RESPONSES[503],
}


def not_found_response(what: str) -> dict[int | str, dict[str, Any]]:
    return {404: _documented(f"No such {what} for this user")}


def _error_response(error: AppError) -> JSONResponse:
    return JSONResponse(
        {"detail": error.detail}, status_code=error.status_code, headers=error.headers
    )


async def _app_error_handler(request: Request, error: Exception) -> JSONResponse:
    return _error_response(cast(AppError, error))


async def _database_unavailable_handler(request: Request, error: Exception) -> JSONResponse:
    # The driver's message can contain the host name; log the type only.
    logger.warning("database unavailable: %s", type(error).__name__)
    return _error_response(ServiceUnavailable("Database unavailable, retry shortly"))


def _configuration_error_response(error: ConfigurationError) -> JSONResponse:
    # The message names the variable or parameter at fault (never a value): it goes to the log,
    # the client learns only that the server is misconfigured.
    logger.error("configuration error: %s", error)
    return JSONResponse({"detail": "Server misconfigured"}, status_code=500)


async def _configuration_error_handler(request: Request, error: Exception) -> JSONResponse:
    return _configuration_error_response(cast(ConfigurationError, error))


class RequestGuard:
    """Refuses bodies over the limit with 413 (counted as they arrive, whatever Content-Length
    claims), adds security headers to every response, and turns an unexpected exception into a
    JSON 500 that is logged by type only (its message could quote the request's content)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            limit = get_settings().max_body_bytes
        except (ConfigurationError, AppError) as error:
            # The settings are read here first, before the app's own error handlers run.
            response = (
                _configuration_error_response(error)
                if isinstance(error, ConfigurationError)
                else _error_response(error)
            )
            await _send_response(send, response)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _send_too_large(send, limit)
                return

        received = 0
        too_large = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if too_large:
                # The app caught the overflow itself (FastAPI answers a failed body read with
                # 400): the answer is still 413, sent instead of the app's.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _send_too_large(send, limit)
                return
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except Exception as error:
            if started:
                raise
            if too_large:
                await _send_too_large(send, limit)
                return
            logger.error("unhandled error: %s", type(error).__name__)
            await _send_json(send, 500, {"detail": "Internal server error"})


class _BodyTooLarge(Exception):
    pass


async def _send_too_large(send: Send, limit: int) -> None:
    response = _error_response(PayloadTooLarge(f"Request body too large (limit {limit} bytes)"))
    await _send_response(send, response)


async def _send_json(send: Send, status_code: int, body: dict[str, str]) -> None:
    await _send_response(send, JSONResponse(body, status_code=status_code))


async def _send_response(send: Send, response: JSONResponse) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers + SECURITY_HEADERS,
        }
    )
    await send({"type": "http.response.body", "body": response.body})


Endpoint = Callable[..., Any]


@dataclass(frozen=True)
class _Declared:
    path: str
    method: str
    endpoint: Endpoint
    options: dict[str, Any]


class JSONBody(Response):
    """A JSON response whose body the route serialised itself, in one pass (pydantic's
    ``dump_json`` of the model it already built), instead of FastAPI validating the returned
    object against the response model once more before serialising it. The route's
    ``response_model`` still documents the body."""

    media_type = "application/json"


class Routes:
    """Route declarations, with ``APIRouter``'s decorators, whose FastAPI routes are built only
    when a function's app asks for one. Building a route analyses its dependencies and compiles
    its models; a function serves one route, so building its module's others at cold start
    would be wasted.

    Every endpoint is ``async def``, and calls blocking code directly: an invocation runs alone
    on its event loop (see :mod:`todo_core.deps`). A sync endpoint is refused, since FastAPI would
    run it on a worker thread, which under Mangum is a new thread per request.
    """

    def __init__(self, *, tags: list[str], responses: dict[int | str, dict[str, Any]]) -> None:
        self.tags = tags
        self.responses = responses
        self._declared: dict[str, _Declared] = {}

    def _declare(self, method: str, path: str, options: dict[str, Any]) -> Callable[[F], F]:
        def register(endpoint: F) -> F:
            if not inspect.iscoroutinefunction(endpoint):
                raise TypeError(f"route {endpoint.__name__!r} must be declared with async def")
            if endpoint.__name__ in self._declared:
                raise ValueError(f"route {endpoint.__name__!r} is declared twice")
            self._declared[endpoint.__name__] = _Declared(path, method, endpoint, options)
            return endpoint

        return register

    def get(self, path: str, **options: Any) -> Callable[[F], F]:
        return self._declare("GET", path, options)

    def post(self, path: str, **options: Any) -> Callable[[F], F]:
        return self._declare("POST", path, options)

    def put(self, path: str, **options: Any) -> Callable[[F], F]:
        return self._declare("PUT", path, options)

    def patch(self, path: str, **options: Any) -> Callable[[F], F]:
        return self._declare("PATCH", path, options)

    def delete(self, path: str, **options: Any) -> Callable[[F], F]:
        return self._declare("DELETE", path, options)

    def build(self, name: str) -> APIRouter:
        """A router holding the one route named ``name`` (its endpoint function's name)."""
        try:
            declared = self._declared[name]
        except KeyError:
            raise LookupError(f"no route named {name!r}") from None
        router = APIRouter(tags=list(self.tags), responses=self.responses)
        router.add_api_route(
            declared.path, declared.endpoint, methods=[declared.method], **declared.options
        )
        return router


def create_app(routes: Routes, *, route: str) -> FastAPI:
    """An app serving only the route named ``route`` of ``routes``: one Lambda, one endpoint."""
    router = routes.build(route)
    # The per-function apps serve no docs of their own: the local server merges their OpenAPI.
    # No redirect ever: a path with a trailing slash is not this function's route (a 404), not a
    # 307 to a Location made of the request's Host and X-Forwarded-Proto.
    app = FastAPI(
        title=f"todo-api {route}",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    app.router.routes.extend(router.routes)
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(ConfigurationError, _configuration_error_handler)
    app.add_exception_handler(RequestValidationError, input_errors.validation_error_handler)
    app.add_exception_handler(HTTPException, input_errors.unparsable_body_handler)
    for database_error in DATABASE_UNAVAILABLE_ERRORS:
        app.add_exception_handler(database_error, _database_unavailable_handler)
    app.add_middleware(input_errors.Utf8Bodies)
    app.add_middleware(RouteOnRawPath)
    app.add_middleware(RequestGuard)
    warm_up(app)  # in Lambda only: the first request's once-per-container work, done at init
    return app
