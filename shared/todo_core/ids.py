"""The shape of identifiers: the users' (from the auth provider) and the rows' (ours).

Shared by the models, the path parameters and the idempotency table, so none of them imports
another resource's model module to learn them."""

from __future__ import annotations

USER_ID_MAX = 128
USER_ID_PATTERN = r"^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$"
"""URL-safe characters, not starting with a dot (Better Auth's ids: 32 letters and digits)."""

MAX_ID = 2**53 - 1
"""The largest id the API accepts: JavaScript's largest exact integer, so every id a client
holds in a JSON number is exact (the columns are bigint; ids never get near this)."""
