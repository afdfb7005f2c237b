"""Alembic environment. The URL is, in order: one handed in by the caller
(``config.attributes["database_url"]``, see infra/devserver/migrations.py),
``MIGRATION_DATABASE_URL`` (Neon's direct, non-pooled host: DDL and long transactions don't
belong on the pooler), ``DATABASE_URL``, then the embedded SQLite default."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel

import todo_core.models  # noqa: F401  (registers every table on SQLModel.metadata)
from todo_core.db import create_sqlite_directory
from todo_core.settings import load_settings, normalize_database_url

config = context.config


def _database_url() -> str:
    given = config.attributes.get("database_url")
    if given:
        return normalize_database_url(str(given))
    direct = os.environ.get("MIGRATION_DATABASE_URL", "").strip()
    if direct:
        return normalize_database_url(direct)
    return load_settings(os.environ).database_url


def run_migrations() -> None:
    url = _database_url()
    is_sqlite = url.startswith("sqlite")
    if is_sqlite:
        create_sqlite_directory(url)
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # The database's statement timeout (migration 0003) guards the API, not schema
            # changes, which may legitimately take longer. This session talks to Postgres directly.
            connection.exec_driver_sql("SET statement_timeout = 0")
            connection.commit()  # end the implicit transaction so Alembic runs its own
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            render_as_batch=is_sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
