"""The database: one lazily created engine per process, holding at most one connection.

Built for Neon's pooled connection string (PgBouncer in transaction mode):

* ``prepare_threshold=None``: psycopg never creates named server-side prepared statements, which
  would outlive the transaction and land on another server connection of the pooler.
* ``AUTOCOMMIT``: every statement is its own transaction, so a one-statement unit of work costs one
  round trip instead of three (BEGIN, statement, COMMIT) and holds a pooler connection for no
  longer than the statement. Work that must be atomic is written as one statement (CTEs).
* No session state: no SET, no temporary tables, no advisory session locks.
* The one connection is reused by every warm invocation and checked on checkout: a socket that
  has become readable while idle means the server or the pooler closed it (``pg_terminate_backend``,
  a pooler restart, Neon suspending the compute), and a connection idle for longer than
  ``DB_IDLE_PING_SECONDS`` is pinged. Either way a dead connection is replaced before the request
  uses it, without a round trip in the common warm case.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator
from sqlalchemy import DateTime, Engine, create_engine, event, exc
from sqlalchemy.engine.interfaces import DBAPIConnection, Dialect
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session

from todo_core.dialect_startup import use_reported_parameters
from todo_core.settings import Settings, get_settings

_LAST_USED = "todo_core.last_used"

DATABASE_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.TimeoutError,
)
"""What a statement raises when the database cannot serve it right now (unreachable, a lost
connection, the pool exhausted, a statement cancelled past ``statement_timeout``): a 503."""


def stored_id(value: int | None) -> int:
    """The id of a row read from the database (only a row never stored has none)."""
    if value is None:
        raise ValueError("row has no id: it was never stored")
    return value


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp, always in UTC; a naive datetime is refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC) if value is not None else None


def _in_utc(value: datetime) -> datetime:
    # Checked here rather than with AwareDatetime, which cost as much again as this function.
    if value.tzinfo is None:
        raise ValueError("a timestamp must carry its time zone")
    return value.astimezone(UTC)


UTCTimestamp = Annotated[datetime, AfterValidator(_in_utc)]
"""A timestamp as the API returns it: in UTC, so its JSON ends in ``Z``. psycopg gives a
timestamptz in the session's ``TimeZone``, and ``to_jsonb`` / ``json_build_object`` write it with
that zone's offset, so every public model's timestamps convert on validation."""


def _socket_has_pending_input(fileno: int) -> bool:
    """True if the server sent something on an idle connection: for PostgreSQL and PgBouncer
    that is a termination notice followed by EOF. Costs a system call, not a round trip."""
    readable, _, _ = select.select([fileno], [], [], 0)
    return bool(readable)


def _install_liveness_checks(engine: Engine, *, idle_ping_seconds: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(
        dbapi_connection: DBAPIConnection,
        record: ConnectionPoolEntry,
        proxy: PoolProxiedConnection,
    ) -> None:
        # Raising DisconnectionError makes the pool discard this connection and connect anew.
        conn: Any = dbapi_connection
        if conn.closed or conn.broken:
            raise exc.DisconnectionError("connection closed")
        if _socket_has_pending_input(conn.pgconn.socket):
            raise exc.DisconnectionError("server closed the idle connection")
        idle = time.monotonic() - record.info.get(_LAST_USED, 0.0)
        if idle > idle_ping_seconds:
            try:
                conn.execute("SELECT 1")
            except Exception as error:  # any failure of the ping means: replace it
                raise exc.DisconnectionError("idle connection failed its ping") from error


def _create_postgres_engine(settings: Settings) -> Engine:
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_connect_timeout_seconds,
        isolation_level="AUTOCOMMIT",
        # Error messages and logs show the SQL but never the values: they are users' data.
        hide_parameters=True,
        # The psycopg dialect would otherwise look up the hstore type on every new connection.
        use_native_hstore=False,
        connect_args={
            "prepare_threshold": None,
            "connect_timeout": settings.db_connect_timeout_seconds,
            "application_name": "todo-api",
            # Detect a silently vanished peer instead of waiting for the kernel's default hours.
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        },
    )
    _install_liveness_checks(engine, idle_ping_seconds=settings.db_idle_ping_seconds)
    use_reported_parameters(engine)
    return engine


class _EngineCache:
    """The process's engine, created on first use and reused by every warm invocation.

    Keyed by the database URL: when a rotated ``DATABASE_URL`` arrives from the parameter store
    (see :mod:`todo_core.secrets`), the old engine is disposed and a new one connects with the
    new credentials. Lambda runs one request at a time per container, so nothing is using the
    old engine's connection then.

    Thread-safe: the local server runs several containers of a function as threads of one
    process, and their first requests arrive together. Without the lock each would create an
    engine, and all but the last would be dropped with their connections still open.
    """

    def __init__(self) -> None:
        self._current: tuple[Engine, str] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Engine:
        settings = get_settings()
        current = self._current  # one read: the pair is replaced whole, never mutated
        if current is not None and current[1] == settings.database_url:
            return current[0]
        with self._lock:
            current = self._current
            if current is not None and current[1] == settings.database_url:
                return current[0]
            if current is not None:
                current[0].dispose()
            engine = _create_postgres_engine(settings)
            self._current = (engine, settings.database_url)
            return engine

    def drop_connections(self, *, close: bool) -> None:
        """Empty the pool, keeping the engine and its compiled statements. ``close=False``
        forgets the connections without a word to the server: after a SnapStart restore their
        sockets belong to the snapshotted environment."""
        with self._lock:
            if self._current is not None:
                self._current[0].dispose(close=close)

    def cache_clear(self) -> None:
        """Dispose of the engine; the next call creates one from the current settings."""
        with self._lock:
            if self._current is not None:
                self._current[0].dispose()
            self._current = None


get_engine = _EngineCache()


async def open_session() -> AsyncIterator[Session]:
    """A session for one request; its connection goes back to the pool when the request ends.

    ``async`` although the session blocks: FastAPI then runs it on the event loop's thread, not
    on a worker thread (see :mod:`todo_core.deps` for why that is sound)."""
    with Session(get_engine(), expire_on_commit=False, autoflush=False) as session:
        yield session


def close_connections() -> None:
    """Close the pool's connections; the engine stays (SnapStart's before-snapshot hook)."""
    get_engine.drop_connections(close=True)


def forget_connections() -> None:
    """Drop the pool's connections unclosed; the engine stays (SnapStart's after-restore hook)."""
    get_engine.drop_connections(close=False)


def reset_engine() -> None:
    """Forget the engine (tests and the local server use this after changing settings)."""
    get_engine.cache_clear()
