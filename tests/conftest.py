"""Test fixtures: a fresh PostgreSQL database per run (migrated with Alembic), reached directly
or, with ``TEST_VIA_PGBOUNCER=1``, through a PgBouncer in transaction mode that the run starts for
itself, as Neon's pooled string is; the functions are invoked through their real handlers with
real HTTP API events."""

from __future__ import annotations

import os
import secrets
import string
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from devserver.migrations import migrate
from devserver.mint_token import mint_token
from devserver.pgbouncer import dedicated_pgbouncer
from devserver.server import Gateway
from tests.api_client import ApiClient, Response
from tests.wire_tap import WireTap, counting_proxy_for, proxied_url
from todo_core.db import reset_engine
from todo_core.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
VIA_PGBOUNCER = os.environ.get("TEST_VIA_PGBOUNCER") == "1"
TEST_SECRET = secrets.token_urlsafe(48)


def url_for(database: str) -> str:
    """The URL of ``database`` on the server of ``TEST_PG_ADMIN_URL`` (host and port, or the
    socket directory of the embedded server)."""
    return make_url(ADMIN_URL).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_name() -> Iterator[str]:
    name = f"todo_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    migrate(url_for(name))
    yield name
    reset_engine()
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def direct_url(database_name: str) -> str:
    """The test database on PostgreSQL itself (for setup, inspection and fault injection)."""
    return url_for(database_name)


@pytest.fixture(scope="session")
def app_url(database_name: str) -> Iterator[str]:
    """The URL the functions use: through a PgBouncer of the run's own when it asks for one."""
    if not VIA_PGBOUNCER:
        yield url_for(database_name)
        return
    with dedicated_pgbouncer() as bouncer:
        yield bouncer.url(database_name)


@contextmanager
def functions_environment(environment: dict[str, str]) -> Iterator[dict[str, str]]:
    """Give the functions in this process these variables (as a new deployment would: settings
    and engine start afresh), and put the previous ones back afterwards."""
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    get_settings.cache_clear()
    reset_engine()
    try:
        yield environment
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()
        reset_engine()


@pytest.fixture(scope="session")
def app_environment(app_url: str) -> Iterator[dict[str, str]]:
    # The per-user turn limit is off here: many tests send more turns than a person would;
    # tests/functions/test_chat_rate_limit.py turns it on.
    with functions_environment(
        {"DATABASE_URL": app_url, "BETTER_AUTH_SECRET": TEST_SECRET, "CHAT_TURNS_PER_WINDOW": "0"}
    ) as environment:
        yield environment


@pytest.fixture(scope="session")
def gateway(app_environment: dict[str, str]) -> Iterator[Gateway]:
    gateway = Gateway(ROOT / "template.yaml")
    yield gateway
    gateway.close()


@pytest.fixture
def api(gateway: Gateway) -> ApiClient:
    return ApiClient(gateway)


@pytest.fixture(autouse=True)
def _empty_tables_afterwards(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that gave the functions the session's database (directly, or through the
    gateway, a local server process or another fixture) leaves its tables empty, so that the next
    test, whichever it is, may count rows: ids restart at 1 too."""
    if "app_environment" not in request.fixturenames:
        yield
        return
    direct_url = request.getfixturevalue("direct_url")
    yield
    with psycopg.connect(direct_url, autocommit=True) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version'"
            )
        ]
        if tables:
            connection.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def new_user_id() -> str:
    """A user id shaped like Better Auth's: 32 letters and digits."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


@pytest.fixture
def alice() -> str:
    return new_user_id()


@pytest.fixture
def bob() -> str:
    return new_user_id()


@pytest.fixture
def token_for() -> Callable[..., str]:
    def make(user_id: str, **kwargs: int) -> str:
        return mint_token(user_id, secret=TEST_SECRET, **kwargs)

    return make


@pytest.fixture
def make_task(api: ApiClient, token_for: Callable[..., str]) -> Callable[..., dict[str, object]]:
    """Create a task through the real create function and return it."""

    def make(user_id: str, title: str = "a task", **fields: object) -> dict[str, object]:
        response = api.post(
            f"/api/{user_id}/tasks", token=token_for(user_id), json_body={"title": title, **fields}
        )
        assert response.status == 201, response.body
        task: dict[str, object] = response.json()
        return task

    return make


@pytest.fixture
def send_chat(api: ApiClient, token_for: Callable[..., str]) -> Callable[..., Response]:
    """Send one chat turn through the real chat function (with an Idempotency-Key when
    ``key`` is given)."""

    def send(
        user_id: str, message: str, conversation_id: int | None = None, key: str | None = None
    ) -> Response:
        body: dict[str, object] = {"message": message}
        if conversation_id is not None:
            body["conversation_id"] = conversation_id
        headers = {"idempotency-key": key} if key is not None else None
        return api.post(
            f"/api/{user_id}/chat", token=token_for(user_id), json_body=body, headers=headers
        )

    return send


@pytest.fixture
def wire(app_environment: dict[str, str], api: ApiClient) -> Iterator[WireTap]:
    """The functions reach the database through a round-trip counter for this test (placed
    between them and PgBouncer in the PgBouncer run); ``api`` cleans the tables afterwards."""
    proxy = counting_proxy_for(app_environment["DATABASE_URL"])
    try:
        with functions_environment(
            {"DATABASE_URL": proxied_url(app_environment["DATABASE_URL"], proxy)}
        ):
            yield WireTap(proxy)
    finally:
        proxy.close()
