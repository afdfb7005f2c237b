"""Database-level timeouts: no statement runs, and no transaction idles, for long.

Set on the database rather than per connection because Neon's pooler (PgBouncer in transaction
mode) neither forwards startup ``options`` nor keeps session ``SET``s: a database default reaches
every server connection, whichever client or pooler opened it. A statement cut off by the timeout
becomes a 503 well before the Lambda's own timeout. Migrations lift the limit for their own
session (see env.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATEMENT_TIMEOUT = "5s"
IDLE_IN_TRANSACTION_TIMEOUT = "10s"


def _alter_database(setting: str) -> None:
    op.execute(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I "
        + setting
        + "', current_database()); END $$"
    )


def upgrade() -> None:
    _alter_database(f"SET statement_timeout = ''{STATEMENT_TIMEOUT}''")
    _alter_database(f"SET idle_in_transaction_session_timeout = ''{IDLE_IN_TRANSACTION_TIMEOUT}''")


def downgrade() -> None:
    _alter_database("RESET statement_timeout")
    _alter_database("RESET idle_in_transaction_session_timeout")
