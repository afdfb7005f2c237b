"""Where the secrets come from: plain environment variables locally, a parameter store in AWS.

For each secret (``DATABASE_URL``, ``BETTER_AUTH_SECRET``, ``OPENAI_API_KEY``) the environment
holds one of:

* the value itself (local development, tests, the local server);
* ``<NAME>_PARAMETER``: the name of an SSM Parameter Store parameter (a SecureString, decrypted);
* ``<NAME>_SECRET_ID``: the name or ARN of a Secrets Manager secret (its string value).

Values are read with aws-lambda-powertools Parameters, which keeps them in memory for
``SECRETS_MAX_AGE_SECONDS`` (default 300): a warm container makes no call to AWS until the value
is that old, and then re-reads it, so a rotated secret is in use within that time. boto3 and
Powertools Parameters are imported only when a ``_PARAMETER`` / ``_SECRET_ID`` variable is set: a
function whose environment supplies the values never pays for importing them at cold start.

A parameter that does not exist or may not be read is a :class:`ConfigurationError` naming it, at
the first request that needs it. A store that cannot be reached right now is a
:class:`ServiceUnavailable` (503) on a cold container; a warm one keeps the value it has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from todo_core.errors import ConfigurationError, ServiceUnavailable

SECRET_NAMES = ("DATABASE_URL", "BETTER_AUTH_SECRET", "OPENAI_API_KEY")
DEFAULT_MAX_AGE_SECONDS = 300

# Errors that retrying will not fix: the deployment is wrong (a name, a policy, a key).
_CONFIGURATION_ERROR_CODES = frozenset(
    {
        "ParameterNotFound",
        "ParameterVersionNotFound",
        "ResourceNotFoundException",
        "AccessDeniedException",
        "AccessDenied",
        "InvalidKeyId",
        "KMSAccessDeniedException",
        "DecryptionFailure",
        "InvalidRequestException",
    }
)


@dataclass(frozen=True, slots=True)
class SecretSource:
    """Where one secret is stored: ``store`` is ``ssm`` or ``secretsmanager``."""

    secret: str  # the setting it provides, e.g. DATABASE_URL
    variable: str  # the environment variable that names it, e.g. DATABASE_URL_PARAMETER
    store: Literal["ssm", "secretsmanager"]
    name: str  # the parameter's name or the secret's id


def secret_sources(environ: Mapping[str, str]) -> list[SecretSource]:
    """The secrets that ``environ`` says to fetch from a store (none locally)."""
    sources: list[SecretSource] = []
    for secret in SECRET_NAMES:
        parameter = environ.get(f"{secret}_PARAMETER", "").strip()
        secret_id = environ.get(f"{secret}_SECRET_ID", "").strip()
        if parameter and secret_id:
            raise ConfigurationError(
                f"set only one of {secret}_PARAMETER and {secret}_SECRET_ID, not both"
            )
        if (parameter or secret_id) and environ.get(secret):
            raise ConfigurationError(
                f"{secret} is set in the environment and also named in a store; set only one"
            )
        if parameter:
            sources.append(SecretSource(secret, f"{secret}_PARAMETER", "ssm", parameter))
        elif secret_id:
            sources.append(SecretSource(secret, f"{secret}_SECRET_ID", "secretsmanager", secret_id))
    return sources


def max_age_seconds(environ: Mapping[str, str]) -> int:
    raw = environ.get("SECRETS_MAX_AGE_SECONDS", "").strip()
    if not raw:
        return DEFAULT_MAX_AGE_SECONDS
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigurationError(f"SECRETS_MAX_AGE_SECONDS must be a positive integer, got {raw!r}")
    return int(raw)


def _error_code(error: BaseException) -> str:
    """The AWS error code behind Powertools' GetParameterError (it wraps the ClientError)."""
    seen: BaseException | None = error
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
        seen = seen.__cause__ or seen.__context__
    return ""


STORE_CONNECT_TIMEOUT_SECONDS = 1.0
STORE_READ_TIMEOUT_SECONDS = 2.0
STORE_ATTEMPTS = 2
"""Bounds on a call to the store, at init or in a request: boto3's defaults (60 s to connect,
60 s to read, retried) would outlast both Lambda's init phase (10 s) and the function."""

# Powertools' name for each store's default provider.
_PROVIDER_NAMES = {"ssm": "ssm", "secretsmanager": "secrets"}


def _bounded_provider(store: str) -> None:
    """Powertools' default provider for ``store``, created once per container with bounded
    timeouts (Powertools would otherwise create it with boto3's defaults). Creating its boto3
    client reads the service model: tens of milliseconds, done by the first read (at init in
    Lambda: :mod:`todo_core.warmup`)."""
    from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415  (lazy: cold start)
    from aws_lambda_powertools.utilities.parameters.constants import (  # noqa: PLC0415
        DEFAULT_PROVIDERS,
    )

    name = _PROVIDER_NAMES[store]
    if name in DEFAULT_PROVIDERS:
        return
    from botocore.config import Config  # noqa: PLC0415  (the Lambda runtime's botocore)

    bounded = Config(
        connect_timeout=STORE_CONNECT_TIMEOUT_SECONDS,
        read_timeout=STORE_READ_TIMEOUT_SECONDS,
        retries={"total_max_attempts": STORE_ATTEMPTS, "mode": "standard"},
    )
    provider = parameters.SSMProvider if store == "ssm" else parameters.SecretsProvider
    DEFAULT_PROVIDERS[name] = provider(boto_config=bounded)


def fetch(source: SecretSource, *, max_age: int) -> str:
    """The secret's current value, from Powertools' cache while it is younger than ``max_age``."""
    from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415  (lazy: cold start)

    _bounded_provider(source.store)
    where = f"{source.variable}={source.name!r}"
    try:
        if source.store == "ssm":
            value: object = parameters.get_parameter(source.name, decrypt=True, max_age=max_age)
        else:
            value = parameters.get_secret(source.name, max_age=max_age)
    except parameters.GetParameterError as error:
        code = _error_code(error) or type(error).__name__
        if code in _CONFIGURATION_ERROR_CODES:
            raise ConfigurationError(f"{where} could not be read: {code}") from None
        from todo_core.observability import logger  # noqa: PLC0415  (Powertools: only with a store)

        logger.warning("secret store unavailable for %s: %s", source.variable, code)
        raise ServiceUnavailable("Configuration store unavailable, retry shortly") from None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{where} holds no string value")
    return value.strip()


def resolve_secrets(
    sources: list[SecretSource],
    *,
    max_age: int,
    previous: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Fetch every source's value, keyed by the setting it provides.

    With ``previous`` values (a warm container), a store that cannot be reached right now leaves
    the previous value in use rather than failing the request; a configuration error still fails.
    """
    values: dict[str, str] = {}
    for source in sources:
        try:
            values[source.secret] = fetch(source, max_age=max_age)
        except ServiceUnavailable:
            if previous is None or source.secret not in previous:
                raise
            values[source.secret] = previous[source.secret]
    return values
