"""Schemathesis hooks for tests/security/test_schemathesis.py: every generated request carries a
valid token for exactly the ``user_id`` its path names, so the API's own logic runs for any user
id schemathesis makes up (instead of stopping at 401/403)."""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

import schemathesis

from devserver.mint_token import mint_token
from todo_core.text import IDEMPOTENCY_KEY_PATTERN as KEY_PATTERN


@schemathesis.auth(refresh_interval=None)
class TokenForThePathsUser:
    def get(self, case: Any, context: Any) -> str:
        user_id = str((case.path_parameters or {}).get("user_id", "schemathesis"))
        return mint_token(user_id, secret=os.environ["BETTER_AUTH_SECRET"], minutes=10)

    def set(self, case: Any, data: str, context: Any) -> None:
        headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
        key = headers.get("Idempotency-Key")
        if isinstance(key, str) and re.fullmatch(KEY_PATTERN, key):
            # A valid key is made unique: schemathesis reuses values ("0") across different
            # bodies, which the API rightly refuses (422). Invalid keys are left to be refused.
            headers["Idempotency-Key"] = f"{key[:200]}-{uuid.uuid4()}"
        case.headers = headers
