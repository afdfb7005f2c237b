"""The init-phase warm-up: what a container's first request would do once, done at import.

Lambda runs a function's module-level code in its init phase, which is not billed on the
request's CPU share and (for on-demand functions) is reported to run on unthrottled vCPUs; the
request phase runs at the memory's share of a vCPU (about 1/7 at 256 MB). So every piece of
once-per-container work the first request would do is moved here, as long as it cannot fail (a
failure is logged and left to the first request, which reports it as it always would) or hang:

* the imports the first request triggers: the database driver (psycopg, which SQLAlchemy imports
  when the engine is created) and AnyIO's asyncio backend and worker-thread queue (Starlette runs
  sync endpoints and dependencies in AnyIO's thread pool);
* the settings; when a parameter store holds the secrets, its client is created (boto3 and
  Powertools imported, the service model loaded, timeouts bounded: at most two attempts of 1 s
  to connect and 2 s to read) and the secrets are read, as the first request would read them
  (an HTTPS call to the store: tens of milliseconds of CPU at the request's share). A store
  that cannot be reached or refuses leaves the settings to the first request, which answers
  503 or 500 as before;
* the engine object (``create_engine`` connects nothing), and the ORM's mapper configuration
  (SQLAlchemy does it on the first use of a model class);
* the compiled form of every statement the loaded modules hold as a module-level constant (a
  ``select``/``insert``/``update``/``delete``, or a dict of them), put in the engine's compiled
  cache under the key its execution will look up (its bind parameter names as the parameter
  keys): the first request's compile was about a third of its CPU. Compiling before the first
  connection has initialised the dialect is safe for these statements: what initialisation
  changes (backslash escapes, the server's feature flags) reaches only literal values rendered
  inline and DDL, which these statements do not have; a statement executed with other keys
  simply misses the cache and compiles as before. It compiles what the function's modules hold,
  not only what its route runs (a task function compiles all 15 task statements to use one or
  two: about 9 ms of init; the chat function's 27 take about 45 ms, most of which its turns use):
  knowing which a route runs would take a registry per route, for init CPU that is not billed to
  the request;
* libpq's table of connection parameter defaults, which psycopg reads on its first connect;
* the time zone a UTC server reports (PostgreSQL's own default, ``GMT``, which Neon's compute
  reports, or Debian's ``Etc/UTC``): psycopg loads it from the system's zone files on the first
  result holding a timestamp, about 0.2 ms of the first request; ``UTC`` itself needs no file. A
  server set to another zone still works: its first request loads that zone, as before;
* SQLAlchemy's per-class event dispatchers of the engine, the connection and the session (made
  when the first instance of each class is, without a connection here), and FastAPI's cached
  classification of each dependency's callable (generator, coroutine: read with ``inspect``);
* the garbage collector's full collection: everything init created (about 100,000 objects) is
  moved to the collector's permanent generation (``gc.freeze()``), never scanned again. Left in
  the oldest generation, the first full collection, which allocation counts put in the first
  request for some functions, cost 60-90 ms of CPU there; after a SnapStart restore it would also
  write to every page of the heap. The init leaves a few tens of unreachable objects, not worth
  the 75 ms a ``gc.collect()`` first would cost;
* the ``ColdStart`` metric (Powertools builds and prints an EMF document for it), see
  :func:`todo_core.observability.publish_cold_start`;
* the app's middleware stack (Starlette builds it on the first request), and FastAPI's record of
  where each endpoint is defined (it reads and tokenizes the endpoint's source file the first time
  the endpoint is called, to name it in error reports);
* a first pass through the request path: :data:`PRIME_REQUESTS` synthetic events for the
  function's own route go through Mangum and the app (not through the instrumented handler: no
  request log line, no metrics), with a bearer token signed by a key no deployment uses, for a
  user the path does not name. Each is refused with a 401 before any dependency that could reach
  the database runs (the health route, which needs no token, answers 200 without the database
  unless asked to check it). A first request still runs code for the first time after this
  (its session, its statement, its response), but Mangum's event handling, the middleware,
  routing, FastAPI's dependency solving, PyJWT's parsing and HMAC, the error handlers and the
  response writing have run, and CPython has specialised their bytecode (3.11 only after a
  function's eighth call, hence three events and not one, though one already gives most of it
  on 3.13). Measured on get_task, 20 paired processes each: the first request's CPU went from a
  median of 3.9 ms to 2.9 ms on CPython 3.13, 3.8 ms to 3.3 ms on 3.11, for about 3 ms of init.
  Failed tokens are never kept (:class:`todo_core.deps.VerifiedTokens`), so nothing of these
  requests outlives them but warmer code.

Not done: connecting to the database. The connection is made lazily by the request that needs it
(the house style's rule 7), a connection made at init would be the one SnapStart snapshots, and a
suspended Neon compute would be woken by every init, including provisioned ones no request
follows. The first request pays for one connection (its TCP and TLS handshakes, and the
authentication) and nothing else of the dialect's: its startup queries are gone
(:mod:`todo_core.dialect_startup`).

It runs only in Lambda (``AWS_LAMBDA_FUNCTION_NAME`` is set): the local server and the tests
read their settings when a request needs them, after they have set the environment.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import zoneinfo
from collections.abc import Iterator
from datetime import tzinfo
from typing import Any

import fastapi.dependencies.models
import fastapi.routing
import psycopg._conninfo_utils
from fastapi import FastAPI
from mangum import Mangum
from mangum.types import LambdaCognitoIdentity, LambdaMobileClientContext
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import configure_mappers
from sqlalchemy.sql import compiler
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement
from sqlmodel import Session

from todo_core.db import get_engine
from todo_core.observability import logger, publish_cold_start, skip_cold_start
from todo_core.settings import get_settings
from todo_core.snapstart import register_hooks

# What the first request imports on its own (found by diffing sys.modules around it).
FIRST_REQUEST_IMPORTS = ("queue", "anyio._backends._asyncio")

# The names PostgreSQL servers running on UTC most often report as their TimeZone, loaded at init
# (kept here, so that zoneinfo's cache of them lasts).
UTC_ZONE_NAMES = ("GMT", "Etc/UTC")
_time_zones: list[tzinfo] = []

# The synthetic requests of :func:`prime_request_path`.
PRIME_REQUESTS = 3
# The synthetic requests' bearer token: {"sub": PRIME_SUBJECT, "exp": 2100-01-01} signed
# (HS256) by WARM_UP_SIGNING_KEY, which the settings refuse as a secret, so it is refused as any
# forged token is; and its subject is not the path's user, so even an accepted one would stop at
# the token check (403). A constant: signing it at init would load PyJWT into the health
# function, which verifies no token (tests/shared/test_warmup.py checks it against PyJWT).
PRIME_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"  # noqa: S105  (published: nobody accepts it)
    ".eyJzdWIiOiJ3YXJtLXVwLXRva2VuLXN1YmplY3QiLCJleHAiOjQxMDI0NDQ4MDB9"
    ".xFokNJ0_UiApvZhUXrOW7_0DWF52YfLw-EAeSoDMlSE"
)
PRIME_SUBJECT = "warm-up-token-subject"
_PRIME_PATH_USER = "warm-up-path-user"
# What the synthetic requests answer: refused at the token check (a route that checks one), or
# served without the database (a route that does not). Anything else means they did not go as
# designed.
_REFUSED_AT_THE_TOKEN_CHECK = 401
_SERVED_WITHOUT_THE_DATABASE = 200
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# The statuses the synthetic requests got in this container's init (empty outside Lambda, or if
# they were skipped): what the tests read to know the request path was primed, and how.
primed_statuses: list[int] = []


def in_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def module_statements() -> Iterator[ClauseElement]:
    """The statements the loaded ``todo_core`` modules hold at module level (alone or in a dict)."""
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "todo_core" or name.startswith("todo_core.")):
            continue
        for value in list(vars(module).values()):
            candidates = value.values() if isinstance(value, dict) else (value,)
            for item in candidates:
                if isinstance(item, Executable) and isinstance(item, ClauseElement):
                    yield item


def precompile_statements(engine: Engine) -> int:
    """Put the compiled form of every module-level statement in ``engine``'s compiled cache, as
    ``Connection.execute(statement, {each bind parameter: ...})`` would; returns how many."""
    dialect: Any = engine.dialect
    cache = engine._compiled_cache  # the cache Connection.execute reads
    if cache is None:
        return 0
    count = 0
    for statement in module_statements():
        cache_key = statement._generate_cache_key()
        if cache_key is None:  # not cacheable: it compiles at each execution anyway
            continue
        statement._compile_w_cache(  # as Connection._execute_clauseelement calls it
            dialect,
            compiled_cache=cache,
            # The keys a caller passes: the parameters without a value of their own (a literal
            # such as ``values(completed=False)`` is a bound parameter too, but never passed).
            column_keys=sorted({bind.key for bind in cache_key.bindparams if bind.required}),
            for_executemany=False,
            schema_translate_map=None,
            linting=dialect.compiler_linting | compiler.WARN_LINTING,
        )
        count += 1
    return count


def _load_connection_defaults() -> None:
    """libpq's table of connection parameters and their defaults (``PQconndefaults``), which
    psycopg reads and keeps on its first connection: about 0.2 ms of the first request's CPU.
    Connects nothing. A private helper of psycopg's: absent from another version, skipped."""
    get_param_def = getattr(psycopg._conninfo_utils, "get_param_def", None)
    if get_param_def is not None:
        get_param_def("host")


def _load_time_zones() -> None:
    """Load :data:`UTC_ZONE_NAMES` into ``zoneinfo``'s cache, where psycopg's lookup of the
    connection's ``TimeZone`` finds them. A zone the system does not have is skipped."""
    for name in UTC_ZONE_NAMES:
        try:
            _time_zones.append(zoneinfo.ZoneInfo(name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            continue


def _create_event_dispatchers(engine: Engine) -> None:
    """The per-class event dispatchers SQLAlchemy makes for the first engine, connection and
    session instance it sees (a dictionary of empty listeners per event: tens per class)."""
    for cls in (type(engine), Connection, Session):
        dispatch: Any = cls.dispatch
        dispatch._for_class(cls)


def _dependencies(dependant: Any) -> Iterator[Any]:
    yield dependant
    for sub_dependant in dependant.dependencies:
        yield from _dependencies(sub_dependant)


def _classify_dependency_callables(app: FastAPI) -> None:
    """FastAPI's (cached) answers to "is this dependency a generator, an async generator, a
    coroutine?", asked of every dependency of every route. Private helpers of FastAPI's: absent
    from another version, skipped."""
    classifiers = [
        getattr(fastapi.dependencies.models, name, None)
        for name in ("_is_gen_callable", "_is_async_gen_callable", "_is_coroutine_callable")
    ]
    for route in app.router.routes:
        if not isinstance(route, fastapi.routing.APIRoute):
            continue
        for dependant in _dependencies(route.dependant):
            for classify in classifiers:
                if classify is not None and dependant.call is not None:
                    classify(dependant.call)


def prime_event(route: fastapi.routing.APIRoute, token: str) -> dict[str, Any]:
    """An HTTP API v2 event for ``route``: ``token`` as its bearer, the path's user id
    :data:`_PRIME_PATH_USER`, every other path parameter ``1``, an empty JSON object as the body
    of a method that takes one."""
    method = sorted(route.methods or {"GET"})[0]
    path = route.path_format
    for name in route.param_convertors:
        value = _PRIME_PATH_USER if name == "user_id" else "1"
        path = path.replace("{" + name + "}", value)
    headers = {"authorization": f"Bearer {token}", "user-agent": "todo-api warm-up"}
    body = None
    if method in _BODY_METHODS:
        body = "{}"
        headers["content-type"] = "application/json"
    route_key = f"{method} {route.path_format}"
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "todo-api warm-up",
            },
            "requestId": "warm-up",
            "routeKey": route_key,
            "stage": "$default",
            "timeEpoch": 0,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def expected_prime_status(route: fastapi.routing.APIRoute) -> int:
    """What a synthetic request for ``route`` answers: 401 if the route checks the bearer token
    (:func:`todo_core.deps.authorized_user_id` among its dependencies), else 200."""
    deps = sys.modules.get("todo_core.deps")  # not loaded: no route of this app checks a token
    check = getattr(deps, "authorized_user_id", None)
    checks_token = check is not None and any(
        dependant.call is check for dependant in _dependencies(route.dependant)
    )
    return _REFUSED_AT_THE_TOKEN_CHECK if checks_token else _SERVED_WITHOUT_THE_DATABASE


def unexpected_prime_statuses(app: FastAPI, statuses: list[int]) -> list[int]:
    """The statuses of :func:`prime_request_path`'s requests that are not their route's
    :func:`expected_prime_status` (a missing answer counts as 0)."""
    expected = [
        expected_prime_status(route)
        for route in app.router.routes
        if isinstance(route, fastapi.routing.APIRoute)
        for _ in range(PRIME_REQUESTS)
    ]
    answered = statuses + [0] * (len(expected) - len(statuses))
    return sorted({got for got, want in zip(answered, expected, strict=False) if got != want})


def prime_request_path(app: FastAPI, requests: int = PRIME_REQUESTS) -> list[int]:
    """Send ``requests`` synthetic events for ``app``'s route through Mangum and the app, none
    of which reaches the database (see the module's docstring); returns their statuses."""
    adapter = Mangum(app, lifespan="off")
    statuses = []
    for route in app.router.routes:
        if isinstance(route, fastapi.routing.APIRoute):
            event = prime_event(route, PRIME_TOKEN)
            for _ in range(requests):
                statuses.append(int(adapter(event, _PRIME_CONTEXT)["statusCode"]))
    return statuses


class _PrimeContext:
    """The Lambda context of a synthetic request: Mangum hands it to the app, which reads none
    of it."""

    function_name: str = "warm-up"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:::function:warm-up"
    memory_limit_in_mb: int = 0
    aws_request_id: str = "warm-up"
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: LambdaCognitoIdentity | None = None
    client_context: LambdaMobileClientContext | None = None

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


_PRIME_CONTEXT = _PrimeContext()


def warm_up(app: FastAPI) -> None:
    """Do the first request's once-per-container work for ``app`` now, in Lambda's init phase.
    Never raises: anything that fails is left to the first request, which reports it."""
    if not in_lambda():
        return
    register_hooks()
    for module in FIRST_REQUEST_IMPORTS:
        importlib.import_module(module)
    prepared = False
    try:
        # With a store, this creates its client and reads the secrets now (bounded calls:
        # :data:`todo_core.secrets.STORE_ATTEMPTS`).
        get_settings()
        configure_mappers()
        engine = get_engine()
        precompile_statements(engine)
        _create_event_dispatchers(engine)
        _load_connection_defaults()
        _load_time_zones()
        prepared = True
    except Exception as error:  # the first request meets it again and answers for it
        logger.warning("warm-up skipped: %s", type(error).__name__)
    app.middleware_stack = app.build_middleware_stack()
    configure_mappers()
    _classify_dependency_callables(app)
    # A private helper of FastAPI's (it caches by endpoint): absent from another version, skipped.
    endpoint_context = getattr(fastapi.routing, "_extract_endpoint_context", None)
    for route in app.router.routes:
        if endpoint_context is not None and isinstance(route, fastapi.routing.APIRoute):
            endpoint_context(route.dependant.call)
    # After a failure above, the synthetic requests would meet it again (a store tried again).
    if prepared:
        primed_statuses.clear()
        try:
            primed_statuses[:] = prime_request_path(app)
        except Exception as error:  # the first request runs that code as it always did
            logger.warning("warm-up request path skipped: %s", type(error).__name__)
        unexpected = unexpected_prime_statuses(app, primed_statuses)
        if primed_statuses and unexpected:
            logger.warning("warm-up request path skipped: answered %s", unexpected)
    _publish_cold_start()
    gc.freeze()


def _publish_cold_start() -> None:
    """The ColdStart metric, published at init: on demand, now; under SnapStart, after each
    restore (the hook does it), not for the init it snapshots; with provisioned concurrency,
    never (no user waits for that init)."""
    initialization = os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
    if initialization == "on-demand":
        publish_cold_start(os.environ["AWS_LAMBDA_FUNCTION_NAME"])
    else:
        skip_cold_start()
