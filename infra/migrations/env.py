"""Alembic environment. The URL is, in order: one handed in by the caller
(``config.attributes["database_url"]``, see infra/devserver/migrations.py),
``MIGRATION_DATABASE_URL`` (Neon's direct, non-pooled host: DDL and long transactions don't
belong on the pooler), then ``DATABASE_URL``."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel

import todo_core.models  # noqa: F401  (registers every table on SQLModel.metadata)
from todo_core.settings import load_settings, normalize_database_url

config = context.config

MIGRATION_LOCK = 0x746F646F  # "todo": the advisory lock that serializes concurrent upgrades


def _database_url() -> str:
    given = config.attributes.get("database_url")
    if given:
        return normalize_database_url(str(given))
    direct = os.environ.get("MIGRATION_DATABASE_URL", "").strip()
    if direct:
        return normalize_database_url(direct)
    return load_settings(os.environ).database_url


def run_migrations() -> None:
    engine = create_engine(_database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        # The database's statement timeout (migration 0003) guards the API, not schema
        # changes, which may legitimately take longer. This session talks to Postgres directly.
        connection.exec_driver_sql("SET statement_timeout = 0")
        connection.commit()  # end the implicit transaction so Alembic runs its own
        context.configure(
            connection=connection, target_metadata=SQLModel.metadata, compare_type=True
        )
        with context.begin_transaction():
            # Two processes upgrading at once (two `make run` on one embedded server, a deploy
            # racing a rerun) take turns: the second one then finds the schema at head.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            context.run_migrations()
    engine.dispose()


run_migrations()
