"""Runs the local server: ``python -m devserver [--host H] [--port P] [--no-migrate]``."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from devserver.local_defaults import apply_local_defaults
from devserver.migrations import migrate
from devserver.server import CONTAINERS_PER_FUNCTION, Gateway, make_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve template.yaml's routes locally.")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
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
    if not args.no_migrate:
        migrate()
    gateway = Gateway(args.template)
    server = make_server(gateway, args.host, args.port)
    url = f"http://{args.host}:{server.server_address[1]}"
    print(f"Todo API on {url}  ({len(gateway.routes)} routes; docs at {url}/docs)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        gateway.close()


if __name__ == "__main__":
    main()
