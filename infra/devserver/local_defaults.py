"""Defaults that make the local run need no setup. Never used by the deployed functions."""

from __future__ import annotations

import os
from collections.abc import MutableMapping

LOCAL_DEV_SECRET = "local-development-secret-not-for-production-0123456789"  # noqa: S105


def apply_local_defaults(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Fill in a development ``BETTER_AUTH_SECRET`` when none is set; return what was filled in."""
    applied: dict[str, str] = {}
    if not environ.get("BETTER_AUTH_SECRET") and not environ.get("BETTER_AUTH_URL"):
        environ["BETTER_AUTH_SECRET"] = applied["BETTER_AUTH_SECRET"] = LOCAL_DEV_SECRET
    return applied
