"""SQLAlchemy's PostgreSQL dialect, initialised without its four startup queries.

On its first connection an engine's dialect asks the server, one round trip each, for
``pg_catalog.version()``, ``current_schema()``, ``show transaction isolation level`` and ``show
standard_conforming_strings``. On a cold container those are four round trips (to Neon: through
its pooler, each a few milliseconds) before the first request's own statement. Here:

* the server version and ``standard_conforming_strings`` come from the ParameterStatus messages
  every PostgreSQL server (and PgBouncer, which relays them) sends at connection startup, which
  psycopg already holds: same values, no round trip. If a server does not report one, the query
  is made as before;
* the default schema is ``public``: the dialect uses it only to reflect tables (which the
  functions never do; migrations run Alembic with an engine of their own), not in any statement;
* the default isolation level is PostgreSQL's, ``READ COMMITTED``: the engine runs in AUTOCOMMIT
  and never changes a connection's isolation level, which is the only case where the dialect
  would restore this default.
"""

from __future__ import annotations

import types
from typing import Any

from sqlalchemy import Engine

POSTGRES_DEFAULT_SCHEMA = "public"
POSTGRES_DEFAULT_ISOLATION_LEVEL = "READ COMMITTED"


def _driver_info(connection: Any) -> Any:
    """psycopg's ConnectionInfo of the SQLAlchemy connection being initialised."""
    return connection.connection.dbapi_connection.info


def use_reported_parameters(engine: Engine) -> None:
    """Make ``engine``'s dialect initialise from what the server reported at connection startup."""
    dialect: Any = engine.dialect
    query_version = dialect._get_server_version_info
    query_backslash_escapes = dialect._set_backslash_escapes

    def server_version_info(self: Any, connection: Any) -> tuple[int, ...]:
        # libpq's encoding: 170004 is 17.4; before version 10, 90624 is 9.6.24.
        number = int(_driver_info(connection).server_version or 0)
        if not number:
            return tuple(query_version(connection))
        if number >= 100000:
            return (number // 10000, number % 10000)
        return (number // 10000, number // 100 % 100, number % 100)

    def set_backslash_escapes(self: Any, connection: Any) -> None:
        reported = _driver_info(connection).parameter_status("standard_conforming_strings")
        if reported is None:
            query_backslash_escapes(connection)
        else:
            self._backslash_escapes = reported == "off"

    def default_schema_name(self: Any, connection: Any) -> str:
        return POSTGRES_DEFAULT_SCHEMA

    def default_isolation_level(self: Any, dbapi_connection: Any) -> str:
        return POSTGRES_DEFAULT_ISOLATION_LEVEL

    dialect._get_server_version_info = types.MethodType(server_version_info, dialect)
    dialect._set_backslash_escapes = types.MethodType(set_backslash_escapes, dialect)
    dialect._get_default_schema_name = types.MethodType(default_schema_name, dialect)
    dialect.get_default_isolation_level = types.MethodType(default_isolation_level, dialect)
