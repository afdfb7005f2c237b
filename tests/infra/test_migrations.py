"""The Alembic migrations build exactly the schema the models describe, and come back down."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command

from devserver.migrations import alembic_config
from tests.conftest import ADMIN_URL, url_for


def test_migrations_match_the_models_on_postgres(direct_url: str) -> None:
    command.check(alembic_config(direct_url))  # raises if the models and the migrated schema differ


@pytest.fixture
def empty_database() -> Iterator[str]:
    name = f"todo_migrations_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield url_for(name)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in rows}


def test_migrations_upgrade_twice_and_downgrade_to_nothing(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "head")
    command.upgrade(config, "head")  # a second run (another `make run`) finds nothing to do
    command.check(config)
    assert {"task", "conversation", "message", "idempotency_key"} <= _tables(empty_database)
    command.downgrade(config, "base")
    assert _tables(empty_database) == {"alembic_version"}
