"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command

from devserver.migrations import alembic_config


def test_migrations_match_the_models_on_postgres(direct_url: str) -> None:
    command.check(alembic_config(direct_url))  # raises if the models and the migrated schema differ


# SQLite's expression index cannot be reflected, so the comparison skips it (and says so);
# the PostgreSQL test compares it.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_migrations_upgrade_check_and_downgrade_on_sqlite(tmp_path: Path) -> None:
    database = tmp_path / "todo.sqlite3"
    config = alembic_config(f"sqlite:///{database}")
    command.upgrade(config, "head")
    command.check(config)
    with sqlite3.connect(database) as connection:
        schema = dict(connection.execute("SELECT name, sql FROM sqlite_master WHERE type='table'"))
    for table in ("task", "conversation", "message"):
        assert "AUTOINCREMENT" in schema[table], table  # ids are never reused
    command.downgrade(config, "base")
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert not tables & {"task", "conversation", "message"}
