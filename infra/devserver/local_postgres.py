"""The embedded PostgreSQL that ``make run`` serves on when ``DATABASE_URL`` is not set.

The server comes from the ``pgserver`` wheel (PostgreSQL 16 binaries, dev dependency only): the
same SQL as production and the test suite, with no setup. Its data lives in ``.local/pgdata``
(``LOCAL_PGDATA`` to move it); it listens on a Unix socket in that directory only, never on a
TCP port, so it cannot clash with another PostgreSQL on the machine. Run as root, pgserver runs
it as the system user ``pgserver`` (PostgreSQL refuses to run as root), which it creates.

Several processes may use one data directory at once (two ``make run``, a ``make run`` and
``make pytest-embedded``): the first one starts the server, the others join it, and the last
one to leave stops it. pgserver keeps that count in ``<pgdata>/.handle_pids.json``; starting,
joining and leaving all happen under an exclusive ``flock`` on ``.<pgdata name>.lock`` beside
the data directory (pgserver's own lock did not keep two processes starting at once apart: one
read the other's half-initialized directory). A process killed without cleaning up (SIGKILL)
leaves its pid in the list, which :func:`embedded_postgres` drops before joining, so the server
is still stopped by whoever leaves last.

``python -m devserver.local_postgres [--pgdata DIR] -- COMMAND...`` runs COMMAND with
``TEST_PG_ADMIN_URL`` pointing at the embedded server (``make pytest-embedded``).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PGDATA = PROJECT_ROOT / ".local" / "pgdata"
DATABASE = "todo"
_HANDLES_FILE = ".handle_pids.json"

# pgserver logs every step at INFO (command lines, postmaster.pid contents): keep its warnings.
logging.getLogger("pgserver").setLevel(logging.WARNING)


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be started; the message says what to do."""


def pgdata_from(environ: Mapping[str, str]) -> Path:
    """Where the embedded server keeps its data: ``LOCAL_PGDATA``, else ``.local/pgdata``."""
    configured = environ.get("LOCAL_PGDATA", "").strip()
    return Path(configured).resolve() if configured else DEFAULT_PGDATA


def database_url(admin_url: str, database: str) -> str:
    """``admin_url`` with another database name (host, port or socket directory kept)."""
    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


def _import_pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to a
        # directory under /tmp, which is where pgserver's lock file then lives: harmless.
        warnings.simplefilter("ignore")
        try:
            import pgserver  # noqa: PLC0415  (a dev dependency; only the local run needs it)
        except ImportError as error:
            raise EmbeddedPostgresError(
                "the embedded PostgreSQL needs the dev dependencies (make install), or set"
                " DATABASE_URL to a PostgreSQL server"
            ) from error
    return pgserver


def _forget_dead_handles(pgserver: Any, pgdata: Path) -> None:
    """Drop the pids of processes that died without leaving (under pgserver's own lock)."""
    handles = pgdata / _HANDLES_FILE
    with pgserver.postgres_server.PostgresServer._lock:
        if not handles.exists():
            return
        pids = json.loads(handles.read_text())
        alive = [pid for pid in pids if _is_alive(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _exclusive(pgdata: Path) -> Iterator[None]:
    """Hold the data directory's start/stop lock (released by the kernel if the process dies)."""
    with pgdata.with_name(f".{pgdata.name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _create_database(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        # initdb takes the machine's time zone; production (Neon) and the test server run in
        # UTC, and timestamps built in SQL (a replayed task's JSON) are written in it.
        admin.execute("ALTER SYSTEM SET timezone = 'UTC'")
        admin.execute("SELECT pg_reload_conf()")
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if exists.fetchone() is None:
            # Another process may create it between the two statements.
            with suppress(pg_errors.DuplicateDatabase):
                admin.execute(f'CREATE DATABASE "{database}"')


@contextmanager
def embedded_postgres(pgdata: Path | None = None, database: str = DATABASE) -> Iterator[str]:
    """Start the embedded server (or join the one running on ``pgdata``), create ``database``
    if missing, and yield its URL. Leaving the block stops the server unless another process
    still uses it."""
    pgdata = (pgdata or DEFAULT_PGDATA).resolve()
    pgserver = _import_pgserver()
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(pgdata):
            if pgdata.exists():
                _forget_dead_handles(pgserver, pgdata)
            server = pgserver.get_server(pgdata, cleanup_mode="stop")
            admin_url = server.get_uri("postgres")
            _create_database(admin_url, database)
    except (OSError, subprocess.SubprocessError, AssertionError, psycopg.Error) as error:
        log = pgdata / "log"
        raise EmbeddedPostgresError(
            f"the embedded PostgreSQL did not start ({type(error).__name__}: {error}); its log"
            f" is {log}. Set DATABASE_URL to use another PostgreSQL server, or delete"
            f" {pgdata} to start afresh (its data goes with it)."
        ) from error
    try:
        yield database_url(admin_url, database)
    finally:
        with _exclusive(pgdata):
            server.cleanup()  # leaves; stops the server if no other process uses it


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Run a command against the embedded PostgreSQL (TEST_PG_ADMIN_URL is set)."
    )
    parser.add_argument("--pgdata", type=Path, default=pgdata_from(os.environ))
    parser.add_argument("command", nargs="+", help="the command (after --)")
    args = parser.parse_args()
    try:
        with embedded_postgres(args.pgdata, database="postgres") as admin_url:
            print(f"embedded PostgreSQL: {args.pgdata}", file=sys.stderr, flush=True)
            environment = {**os.environ, "TEST_PG_ADMIN_URL": admin_url}
            result = subprocess.run(args.command, env=environment, check=False)
    except EmbeddedPostgresError as error:
        sys.exit(f"error: {error}")
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
