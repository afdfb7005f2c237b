"""README's configuration table states each setting's default: the code has the same one.

The table is read from README.md itself, so that a default changed on one side only fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devserver.__main__ import DEFAULT_PORT
from devserver.local_postgres import DEFAULT_PGDATA, PROJECT_ROOT
from todo_core.errors import ConfigurationError
from todo_core.secrets import max_age_seconds
from todo_core.settings import CHAT_MODEL_TIMEOUT_MAX_SECONDS, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"
SETTINGS = load_settings({"DATABASE_URL": "postgresql://u@h/db"})

# The variable, and what the code takes when it is unset.
DEFAULTS: dict[str, object] = {
    "MAX_BODY_BYTES": SETTINGS.max_body_bytes,
    "DB_CONNECT_TIMEOUT_SECONDS": SETTINGS.db_connect_timeout_seconds,
    "DB_IDLE_PING_SECONDS": SETTINGS.db_idle_ping_seconds,
    "DB_POOL_SIZE": SETTINGS.db_pool_size,
    "CHAT_MAX_MESSAGE_CHARS": SETTINGS.chat_max_message_chars,
    "CHAT_MAX_REPLY_CHARS": SETTINGS.chat_max_reply_chars,
    "CHAT_HISTORY_WINDOW": SETTINGS.chat_history_window,
    "CHAT_ASSISTANT": SETTINGS.chat_assistant,
    "CHAT_MODEL_TIMEOUT_SECONDS": SETTINGS.chat_model_timeout_seconds,
    "CHAT_MODEL_MAX_RETRIES": SETTINGS.chat_model_max_retries,
    "CHAT_MAX_TOOL_ROUNDS": SETTINGS.chat_max_tool_rounds,
    "CHAT_MAX_TOOL_CALLS_PER_ROUND": SETTINGS.chat_max_tool_calls_per_round,
    "CHAT_HISTORY_CHARS": SETTINGS.chat_history_chars,
    "CHAT_MODEL_MAX_OUTPUT_TOKENS": SETTINGS.chat_model_max_output_tokens,
    "CHAT_MODEL_MAX_TOKENS_FIELD": SETTINGS.chat_model_max_tokens_field,
    "CHAT_TURNS_PER_WINDOW": SETTINGS.chat_turns_per_window,
    "CHAT_RATE_WINDOW_SECONDS": SETTINGS.chat_rate_window_seconds,
    "IDEMPOTENCY_KEY_TTL_SECONDS": SETTINGS.idempotency_key_ttl_seconds,
    "BETTER_AUTH_JWKS_TIMEOUT_SECONDS": SETTINGS.better_auth_jwks_timeout_seconds,
    "BETTER_AUTH_JWKS_REFRESH_SECONDS": SETTINGS.better_auth_jwks_refresh_seconds,
    "BETTER_AUTH_JWKS_CACHE_SECONDS": SETTINGS.better_auth_jwks_cache_seconds,
    "SECRETS_MAX_AGE_SECONDS": max_age_seconds({}),
    "LOCAL_PGDATA": DEFAULT_PGDATA.relative_to(PROJECT_ROOT).as_posix(),
}


def _readme_defaults() -> dict[str, str]:
    """Each row of the Configuration table: its first variable and the first `value` of its
    Default column."""
    section = README.read_text(encoding="utf-8").split("## Configuration", 1)[1]
    table = section.split("\n## ", 1)[0]
    defaults = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        variable = re.match(r"`([A-Z_]+)`", cells[0])
        value = re.search(r"`([^`]+)`", cells[1])
        if variable and value:
            defaults[variable.group(1)] = value.group(1)
    return defaults


@pytest.mark.parametrize("variable", sorted(DEFAULTS))
def test_readme_states_the_default_the_code_has(variable: str) -> None:
    documented = _readme_defaults().get(variable)
    assert documented is not None, f"README's configuration table has no default for {variable}"
    default = DEFAULTS[variable]
    if isinstance(default, bool) or not isinstance(default, int | float):
        assert documented == str(default)
    else:
        assert float(documented) == default, (variable, documented, default)


@pytest.mark.parametrize(
    ("variable", "bound", "allowed", "refused"),
    [
        ("CHAT_MODEL_TIMEOUT_SECONDS", f"at most {CHAT_MODEL_TIMEOUT_MAX_SECONDS:g}", "25", "25.5"),
        ("IDEMPOTENCY_KEY_TTL_SECONDS", "at least 60", "60", "59"),
        ("CHAT_MAX_REPLY_CHARS", "at least 100", "100", "99"),
    ],
)
def test_readme_states_the_bounds_the_code_enforces(
    variable: str, bound: str, allowed: str, refused: str
) -> None:
    row = next(
        line for line in README.read_text().splitlines() if line.startswith(f"| `{variable}`")
    )
    assert bound in row.split("|")[2]
    load_settings({"DATABASE_URL": "postgresql://u@h/db", variable: allowed})
    with pytest.raises(ConfigurationError, match=variable):
        load_settings({"DATABASE_URL": "postgresql://u@h/db", variable: refused})


def test_readme_states_where_make_run_listens() -> None:
    documented = _readme_defaults()
    assert documented["PORT"] == str(DEFAULT_PORT)
