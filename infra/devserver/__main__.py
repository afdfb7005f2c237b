"""Runs the local server: ``python -m devserver [--host H] [--port P] [--no-migrate]``.

Without ``DATABASE_URL`` it serves on the embedded PostgreSQL (see ``local_postgres``), which it
starts (or joins) first and stops when it exits, unless another process still uses it."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from devserver.local_defaults import apply_local_defaults
from devserver.local_postgres import EmbeddedPostgresError, embedded_postgres, pgdata_from
from devserver.migrations import migrate
from devserver.server import CONTAINERS_PER_FUNCTION, Gateway, make_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORT = 8000


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # `kill`, a test harness or a process manager stop the server with SIGTERM: unwind as for
    # Ctrl-C, so that the embedded PostgreSQL it started is stopped too.
    raise KeyboardInterrupt


def _uses_embedded_postgres(environ: Mapping[str, str]) -> bool:
    return not any(
        environ.get(name, "").strip()
        for name in ("DATABASE_URL", "DATABASE_URL_PARAMETER", "DATABASE_URL_SECRET_ID")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve template.yaml's routes locally.")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", str(DEFAULT_PORT))))
    parser.add_argument("--template", type=Path, default=PROJECT_ROOT / "template.yaml")
    parser.add_argument("--no-migrate", action="store_true", help="skip alembic upgrade head")
    args = parser.parse_args()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    applied = apply_local_defaults()
    # One process plays many containers: each busy one needs its own connection, as in Lambda.
    os.environ.setdefault("DB_POOL_SIZE", str(CONTAINERS_PER_FUNCTION))
    if applied:
        logging.getLogger("devserver").warning(
            "BETTER_AUTH_SECRET not set: using the local development secret (never deploy it)"
        )
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with ExitStack() as stack:
        try:
            if _uses_embedded_postgres(os.environ):
                pgdata = pgdata_from(os.environ)
                os.environ["DATABASE_URL"] = stack.enter_context(embedded_postgres(pgdata))
                print(f"DATABASE_URL not set: embedded PostgreSQL 16 in {pgdata}", flush=True)
            if not args.no_migrate:
                migrate()
            gateway = Gateway(args.template)
            stack.callback(gateway.close)
            try:
                server = make_server(gateway, args.host, args.port)
            except OSError as error:
                sys.exit(f"error: cannot listen on {args.host}:{args.port}: {error.strerror}")
            stack.callback(server.server_close)
            url = f"http://{args.host}:{server.server_address[1]}"
            routes = len(gateway.routes)
            print(f"Todo API on {url}  ({routes} routes; docs at {url}/docs)", flush=True)
            server.serve_forever()
        except EmbeddedPostgresError as error:
            sys.exit(f"error: {error}")
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
