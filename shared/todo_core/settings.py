"""Configuration, read once per process from an environment mapping and validated up front.

Locally every value is a plain environment variable. In AWS the secrets are not in the
environment: ``DATABASE_URL_PARAMETER`` / ``BETTER_AUTH_SECRET_PARAMETER`` name where they are
stored, and :mod:`todo_core.secrets` resolves them (see that module).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict
from urllib.parse import urlsplit

from todo_core.errors import ConfigurationError
from todo_core.secrets import (
    DEFAULT_MAX_AGE_SECONDS,
    SecretSource,
    max_age_seconds,
    resolve_secrets,
    secret_sources,
)

BETTER_AUTH_JWKS_PATH = "/api/auth/jwks"
"""Where Better Auth's JWT plugin publishes its public keys, under the frontend's base URL."""
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting the functions read. Built by :func:`load_settings`; never mutated."""

    database_url: str
    better_auth_secret: str | None
    max_body_bytes: int = 64 * 1024
    db_connect_timeout_seconds: int = 2
    db_pool_size: int = 1
    """Connections per process: one per Lambda container; the dev server runs many containers
    in one process and sets more."""
    db_idle_ping_seconds: float = 60.0
    chat_max_message_chars: int = 4000
    chat_max_reply_chars: int = 16_000
    chat_history_window: int = 20
    chat_assistant: str = "builtin"
    idempotency_key_ttl_seconds: int = 24 * 60 * 60
    # CHAT_ASSISTANT=openai: any OpenAI-compatible Chat Completions endpoint.
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    chat_model: str | None = None
    chat_model_timeout_seconds: float = 20.0
    chat_model_max_retries: int = 1
    chat_max_tool_rounds: int = 5
    chat_max_tool_calls_per_round: int = 16
    chat_history_chars: int = 24_000
    chat_system_prompt: str | None = None
    chat_model_max_output_tokens: int = 0
    chat_model_max_tokens_field: str = "max_completion_tokens"
    # The cost guard: at most this many turns per user per window (0: no limit).
    chat_turns_per_window: int = 30
    chat_rate_window_seconds: int = 60
    # Better Auth's JWKS mode: all three are set together, or none (see load_settings).
    better_auth_jwks_url: str | None = None
    better_auth_issuer: str | None = None
    better_auth_audience: str | None = None
    better_auth_jwks_timeout_seconds: float = 2.0
    better_auth_jwks_refresh_seconds: float = 10.0
    better_auth_jwks_cache_seconds: float = 300.0


def _int(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be >= {minimum}, got {value}")
    return value


def _choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (the first by default)."""
    value = environ.get(name, "").strip()
    if not value:
        return choices[0]
    if value not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _float(
    environ: Mapping[str, str], name: str, default: float, *, positive: bool = False
) -> float:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a finite number, got {raw!r}")
    if value < 0 or (positive and value == 0):
        raise ConfigurationError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value}")
    return value


def _http_url(environ: Mapping[str, str], name: str) -> str | None:
    """An absolute http(s) URL, or None when unset. Plain http only on a loopback host: keys
    fetched over plain http on a network could be swapped by anyone on the path."""
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        split = urlsplit(raw)
        host = split.hostname
    except ValueError:
        raise ConfigurationError(f"{name} is not a valid URL: {raw!r}") from None
    if split.scheme not in ("http", "https") or not host:
        raise ConfigurationError(f"{name} must be an absolute http(s) URL, got {raw!r}")
    if split.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise ConfigurationError(f"{name} must use https (plain http only for localhost)")
    return raw


def _jwks_settings(environ: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    """JWKS URL, issuer and audience: derived from BETTER_AUTH_URL, each one overridable."""
    base_url = _http_url(environ, "BETTER_AUTH_URL")
    jwks_url = _http_url(environ, "BETTER_AUTH_JWKS_URL")
    issuer = environ.get("BETTER_AUTH_ISSUER", "").strip() or None
    audience = environ.get("BETTER_AUTH_AUDIENCE", "").strip() or None
    if base_url is not None:
        # Better Auth sets iss and aud to its baseURL without a trailing slash.
        origin = base_url.rstrip("/")
        jwks_url = jwks_url or origin + BETTER_AUTH_JWKS_PATH
        issuer = issuer or origin
        audience = audience or origin
    elif jwks_url is not None:
        for name, value in (("BETTER_AUTH_ISSUER", issuer), ("BETTER_AUTH_AUDIENCE", audience)):
            if value is None:
                raise ConfigurationError(
                    f"{name} is required when BETTER_AUTH_JWKS_URL is set without BETTER_AUTH_URL"
                )
    elif issuer is not None or audience is not None:
        raise ConfigurationError(
            "BETTER_AUTH_ISSUER and BETTER_AUTH_AUDIENCE need BETTER_AUTH_URL "
            "(or BETTER_AUTH_JWKS_URL) to be set"
        )
    return jwks_url, issuer, audience


CHAT_MODEL_TIMEOUT_MAX_SECONDS = 25.0
"""The model's budget must leave the turn's own statements room inside the chat function's
29-second timeout (API Gateway's HTTP API gives up at 30 s)."""


class _ModelSettings(TypedDict):
    openai_api_key: str | None
    openai_base_url: str | None
    chat_model: str | None
    chat_model_timeout_seconds: float
    chat_model_max_retries: int
    chat_max_tool_rounds: int
    chat_max_tool_calls_per_round: int
    chat_history_chars: int
    chat_system_prompt: str | None
    chat_model_max_output_tokens: int
    chat_model_max_tokens_field: str


ASSISTANT_NAMES = ("builtin", "openai")
"""What ``CHAT_ASSISTANT`` may name (the first is the default): the keys of
:data:`todo_core.chat.assistant.ASSISTANTS`."""

MAX_TOKENS_FIELDS = ("max_completion_tokens", "max_tokens")
"""The names of a model call's output limit: OpenAI's current one (its reasoning models refuse
the other), and the older one, which some compatible servers (Ollama's) know alone."""


def _model_settings(environ: Mapping[str, str], assistant: str) -> _ModelSettings:
    """The model's settings; the key and the model are required only when the model answers."""
    key = environ.get("OPENAI_API_KEY", "").strip() or None
    model = environ.get("CHAT_MODEL", "").strip() or None
    if assistant == "openai":
        if key is None:
            raise ConfigurationError(
                "OPENAI_API_KEY is required with CHAT_ASSISTANT=openai (or"
                " OPENAI_API_KEY_PARAMETER; any non-empty value for a provider without keys,"
                " such as a local Ollama)"
            )
        if model is None:
            raise ConfigurationError("CHAT_MODEL is required with CHAT_ASSISTANT=openai")
    timeout = _float(environ, "CHAT_MODEL_TIMEOUT_SECONDS", 20.0, positive=True)
    if timeout > CHAT_MODEL_TIMEOUT_MAX_SECONDS:
        raise ConfigurationError(
            f"CHAT_MODEL_TIMEOUT_SECONDS must be <= {CHAT_MODEL_TIMEOUT_MAX_SECONDS:g}"
            f" (the chat function's timeout), got {timeout:g}"
        )
    return {
        "openai_api_key": key,
        "openai_base_url": _http_url(environ, "OPENAI_BASE_URL"),
        "chat_model": model,
        "chat_model_timeout_seconds": timeout,
        "chat_model_max_retries": _int(environ, "CHAT_MODEL_MAX_RETRIES", 1, minimum=0),
        "chat_max_tool_rounds": _int(environ, "CHAT_MAX_TOOL_ROUNDS", 5),
        "chat_max_tool_calls_per_round": _int(environ, "CHAT_MAX_TOOL_CALLS_PER_ROUND", 16),
        "chat_history_chars": _int(environ, "CHAT_HISTORY_CHARS", 24_000, minimum=1000),
        "chat_system_prompt": environ.get("CHAT_SYSTEM_PROMPT", "").strip() or None,
        "chat_model_max_output_tokens": _int(environ, "CHAT_MODEL_MAX_OUTPUT_TOKENS", 0, minimum=0),
        "chat_model_max_tokens_field": _choice(
            environ, "CHAT_MODEL_MAX_TOKENS_FIELD", MAX_TOKENS_FIELDS
        ),
    }


def normalize_database_url(url: str) -> str:
    """Select the psycopg 3 driver for PostgreSQL URLs, whatever scheme the provider printed.

    Neon prints ``postgresql://...``; SQLAlchemy would pick psycopg2 for that scheme.
    """
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("postgresql+psycopg://"):
        return url
    raise ConfigurationError(
        f"DATABASE_URL must be a postgresql:// URL (got a URL with scheme {url.split(':', 1)[0]!r})"
    )


WARM_UP_SIGNING_KEY = "todo-api warm-up: this key signs tokens that no deployment accepts"
"""Signs the init phase's synthetic requests (:mod:`todo_core.warmup`). It is published here, so
no deployment may take it for its secret: :func:`load_settings` refuses it."""


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build and validate the settings; a ConfigurationError names the variable at fault."""
    raw_url = environ.get("DATABASE_URL", "").strip()
    if not raw_url:
        # `make run` sets it to its embedded PostgreSQL before anything reads the settings.
        raise ConfigurationError(
            "DATABASE_URL is not set (nor DATABASE_URL_PARAMETER or DATABASE_URL_SECRET_ID)"
        )
    database_url = normalize_database_url(raw_url)
    secret = environ.get("BETTER_AUTH_SECRET") or None
    if secret is not None and len(secret) < 32:
        raise ConfigurationError("BETTER_AUTH_SECRET must be at least 32 characters long")
    if secret == WARM_UP_SIGNING_KEY:
        raise ConfigurationError(
            "BETTER_AUTH_SECRET is the warm-up's published signing key: use a random secret"
        )
    jwks_url, issuer, audience = _jwks_settings(environ)
    assistant = _choice(environ, "CHAT_ASSISTANT", ASSISTANT_NAMES)
    return Settings(
        database_url=database_url,
        better_auth_secret=secret,
        max_body_bytes=_int(environ, "MAX_BODY_BYTES", 64 * 1024),
        db_connect_timeout_seconds=_int(environ, "DB_CONNECT_TIMEOUT_SECONDS", 2, minimum=2),
        db_pool_size=_int(environ, "DB_POOL_SIZE", 1),
        db_idle_ping_seconds=_float(environ, "DB_IDLE_PING_SECONDS", 60.0),
        chat_max_message_chars=_int(environ, "CHAT_MAX_MESSAGE_CHARS", 4000),
        chat_max_reply_chars=_int(environ, "CHAT_MAX_REPLY_CHARS", 16_000, minimum=100),
        chat_history_window=_int(environ, "CHAT_HISTORY_WINDOW", 20),
        chat_assistant=assistant,
        **_model_settings(environ, assistant),
        chat_turns_per_window=_int(environ, "CHAT_TURNS_PER_WINDOW", 30, minimum=0),
        chat_rate_window_seconds=_int(environ, "CHAT_RATE_WINDOW_SECONDS", 60),
        # At least a minute: a key must outlive every retry of the request it guards.
        idempotency_key_ttl_seconds=_int(
            environ, "IDEMPOTENCY_KEY_TTL_SECONDS", 24 * 60 * 60, minimum=60
        ),
        better_auth_jwks_url=jwks_url,
        better_auth_issuer=issuer,
        better_auth_audience=audience,
        better_auth_jwks_timeout_seconds=_float(
            environ, "BETTER_AUTH_JWKS_TIMEOUT_SECONDS", 2.0, positive=True
        ),
        better_auth_jwks_refresh_seconds=_float(environ, "BETTER_AUTH_JWKS_REFRESH_SECONDS", 10.0),
        better_auth_jwks_cache_seconds=_float(
            environ, "BETTER_AUTH_JWKS_CACHE_SECONDS", 300.0, positive=True
        ),
    )


class _SettingsCache:
    """The process's settings, loaded on first use (never at import, so a cold start fails loudly
    in the first request's log rather than as an opaque import error).

    Locally they are loaded once. When the secrets live in a store (see :mod:`todo_core.secrets`)
    each call asks Powertools for them, which answers from memory until they are older than
    ``SECRETS_MAX_AGE_SECONDS`` and then re-reads them; when a value has changed (a rotation),
    a new Settings object is built, and the engine (:func:`todo_core.db.get_engine`) follows a
    changed database URL.
    """

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._sources: list[SecretSource] | None = None
        self._max_age = DEFAULT_MAX_AGE_SECONDS
        self._secrets: dict[str, str] | None = None

    def __call__(self) -> Settings:
        if self._sources is None:
            self._sources = secret_sources(os.environ)
            self._max_age = max_age_seconds(os.environ)
        if not self._sources:
            if self._settings is None:
                self._settings = load_settings(os.environ)
            return self._settings
        values = resolve_secrets(self._sources, max_age=self._max_age, previous=self._secrets)
        if self._settings is None or values != self._secrets:
            self._settings = load_settings({**os.environ, **values})
            self._secrets = values
        return self._settings

    def cache_clear(self) -> None:
        """Forget everything; the next call reads the environment again (tests use this)."""
        self._settings = None
        self._sources = None
        self._secrets = None


get_settings = _SettingsCache()
