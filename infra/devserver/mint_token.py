"""Prints an HS256 token for a user, signed with ``BETTER_AUTH_SECRET`` (or the local default).

python -m devserver.mint_token alice [--minutes 60]
"""

from __future__ import annotations

import argparse
import os
import time

import jwt

from devserver.local_defaults import apply_local_defaults


def mint_token(user_id: str, *, secret: str, minutes: int = 60) -> str:
    now = int(time.time())
    return jwt.encode(
        {"sub": user_id, "iat": now, "exp": now + minutes * 60}, secret, algorithm="HS256"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("user_id")
    parser.add_argument("--minutes", type=int, default=60)
    args = parser.parse_args()
    apply_local_defaults()
    secret = os.environ.get("BETTER_AUTH_SECRET")
    if not secret:
        parser.exit(
            2,
            "BETTER_AUTH_SECRET is not set (JWKS-only mode refuses HS256): "
            "mint a Better Auth token with `make token-jwks` instead\n",
        )
    print(mint_token(args.user_id, secret=secret, minutes=args.minutes))


if __name__ == "__main__":
    main()
