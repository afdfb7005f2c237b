"""Alembic, as the local server and the tests run it (in process, against a URL of their choice)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str | None = None) -> Config:
    """The project's Alembic configuration; ``database_url``, when given, wins over the
    environment's ``MIGRATION_DATABASE_URL`` / ``DATABASE_URL`` (see infra/migrations/env.py)."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


def migrate(database_url: str | None = None) -> None:
    """Bring the database (the configured one by default) to the latest schema."""
    command.upgrade(alembic_config(database_url), "head")
