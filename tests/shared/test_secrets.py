"""Secrets from SSM Parameter Store and Secrets Manager (moto), read through Powertools Parameters:
first use, a missing parameter, a rotation, and no boto3 at all when the environment has them."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from fastapi import FastAPI
from moto import mock_aws

from devserver.mint_token import mint_token
from devserver.server import Gateway
from tests.api_client import ApiClient
from tests.conftest import new_user_id
from tests.polling import wait_until
from tests.tcp_proxy import FaultyProxy
from todo_core import secrets, snapstart
from todo_core.api import create_app
from todo_core.db import get_engine, reset_engine
from todo_core.errors import ConfigurationError, ServiceUnavailable
from todo_core.settings import Settings, get_settings
from todo_core.tasks.routes import router as tasks_router

ROOT = Path(__file__).resolve().parents[2]
SECRET_A = "a" * 40
SECRET_B = "b" * 40
DATABASE_PARAMETER = "/todo/test/database-url"
AUTH_PARAMETER = "/todo/test/better-auth-secret"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A mocked AWS account, and an environment that names the secrets instead of holding them."""
    for name in ("DATABASE_URL", "BETTER_AUTH_SECRET", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    parameters.clear_caches()
    get_settings.cache_clear()
    reset_engine()
    with mock_aws():
        yield
    parameters.clear_caches()
    get_settings.cache_clear()
    reset_engine()


def put_parameter(name: str, value: str) -> None:
    boto3.client("ssm").put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


def test_settings_secrets_from_ssm_securestring(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    put_parameter(DATABASE_PARAMETER, "postgresql://todo@db.invalid:5432/a")
    put_parameter(AUTH_PARAMETER, SECRET_A)
    monkeypatch.setenv("DATABASE_URL_PARAMETER", DATABASE_PARAMETER)
    monkeypatch.setenv("BETTER_AUTH_SECRET_PARAMETER", AUTH_PARAMETER)

    settings = get_settings()

    assert settings.database_url == "postgresql+psycopg://todo@db.invalid:5432/a"
    assert settings.better_auth_secret == SECRET_A
    assert get_settings() is settings  # warm calls reuse it


def test_settings_secrets_from_secrets_manager(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    client = boto3.client("secretsmanager")
    client.create_secret(Name="todo/test/database-url", SecretString="postgresql://u:p@h/db")
    arn = client.create_secret(Name="todo/test/auth", SecretString=SECRET_A)["ARN"]
    monkeypatch.setenv("DATABASE_URL_SECRET_ID", "todo/test/database-url")
    monkeypatch.setenv("BETTER_AUTH_SECRET_SECRET_ID", arn)

    settings = get_settings()

    assert settings.database_url == "postgresql+psycopg://u:p@h/db"
    assert settings.better_auth_secret == SECRET_A


def test_settings_missing_parameter_is_a_configuration_error_at_first_use(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_parameter(AUTH_PARAMETER, SECRET_A)
    monkeypatch.setenv("DATABASE_URL_PARAMETER", "/todo/test/nope")
    monkeypatch.setenv("BETTER_AUTH_SECRET_PARAMETER", AUTH_PARAMETER)

    with pytest.raises(ConfigurationError) as raised:
        get_settings()

    message = str(raised.value)
    assert "DATABASE_URL_PARAMETER='/todo/test/nope'" in message
    assert "ParameterNotFound" in message
    assert SECRET_A not in message


def test_handler_missing_parameter_is_a_json_500_that_names_it_in_the_log(
    aws: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DATABASE_URL_PARAMETER", "/todo/test/nope")
    monkeypatch.setenv("BETTER_AUTH_SECRET_PARAMETER", AUTH_PARAMETER)
    gateway = Gateway(ROOT / "template.yaml")
    try:
        response = ApiClient(gateway).get("/health")
    finally:
        gateway.close()

    assert response.status == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "Server misconfigured"}
    assert "DATABASE_URL_PARAMETER='/todo/test/nope'" in caplog.text


def test_settings_both_value_and_parameter_is_refused(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BETTER_AUTH_SECRET", SECRET_A)
    monkeypatch.setenv("BETTER_AUTH_SECRET_PARAMETER", AUTH_PARAMETER)

    with pytest.raises(ConfigurationError, match="BETTER_AUTH_SECRET is set"):
        get_settings()


def test_settings_rotation_is_picked_up_after_max_age(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_parameter(DATABASE_PARAMETER, "postgresql://todo@db.invalid:5432/a")
    put_parameter(AUTH_PARAMETER, SECRET_A)
    monkeypatch.setenv("DATABASE_URL_PARAMETER", DATABASE_PARAMETER)
    monkeypatch.setenv("BETTER_AUTH_SECRET_PARAMETER", AUTH_PARAMETER)
    monkeypatch.setenv("SECRETS_MAX_AGE_SECONDS", "1")
    read_at = time.monotonic()
    before, engine_before = get_settings(), get_engine()

    put_parameter(DATABASE_PARAMETER, "postgresql://todo@db.invalid:5432/b")
    put_parameter(AUTH_PARAMETER, SECRET_B)
    assert get_settings() is before  # still cached: no call to AWS per request

    def rotated() -> Settings | None:
        settings = get_settings()
        return settings if settings.better_auth_secret == SECRET_B else None

    after = wait_until(rotated)
    assert time.monotonic() - read_at >= 1  # not before the cached value is max-age old

    assert after.better_auth_secret == SECRET_B
    assert after.database_url == "postgresql+psycopg://todo@db.invalid:5432/b"
    assert get_engine() is not engine_before
    assert str(get_engine().url) == "postgresql+psycopg://todo@db.invalid:5432/b"


def test_settings_unreachable_store_keeps_the_warm_value(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = secrets.SecretSource("BETTER_AUTH_SECRET", "X_PARAMETER", "ssm", "/x")

    def unavailable(source: secrets.SecretSource, *, max_age: int) -> str:
        raise ServiceUnavailable()

    monkeypatch.setattr(secrets, "fetch", unavailable)

    kept = secrets.resolve_secrets([source], max_age=1, previous={"BETTER_AUTH_SECRET": SECRET_A})
    assert kept == {"BETTER_AUTH_SECRET": SECRET_A}
    with pytest.raises(ServiceUnavailable):
        secrets.resolve_secrets([source], max_age=1, previous=None)


def test_handler_rotated_auth_secret_verifies_new_tokens(
    aws: None, monkeypatch: pytest.MonkeyPatch, app_url: str
) -> None:
    put_parameter(DATABASE_PARAMETER, app_url)
    put_parameter(AUTH_PARAMETER, SECRET_A)
    monkeypatch.setenv("DATABASE_URL_PARAMETER", DATABASE_PARAMETER)
    monkeypatch.setenv("BETTER_AUTH_SECRET_PARAMETER", AUTH_PARAMETER)
    monkeypatch.setenv("SECRETS_MAX_AGE_SECONDS", "1")
    user = new_user_id()
    gateway = Gateway(ROOT / "template.yaml")
    api = ApiClient(gateway)

    def call(secret: str) -> int:
        return api.get(f"/api/{user}/tasks", token=mint_token(user, secret=secret)).status

    try:
        assert (call(SECRET_A), call(SECRET_B)) == (200, 401)
        put_parameter(AUTH_PARAMETER, SECRET_B)
        wait_until(lambda: call(SECRET_B) == 200)
        assert (call(SECRET_A), call(SECRET_B)) == (401, 200)
    finally:
        gateway.close()


@pytest.fixture
def lambda_init(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], FastAPI]]:
    """Builds get_task's app as Lambda's init does (the warm-up runs), undoing what the warm-up
    leaves in this process afterwards: the store clients it created, its frozen objects."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "get_task")
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency")  # no metric
    DEFAULT_PROVIDERS.clear()
    try:
        yield lambda: create_app(tasks_router, route="get_task")
    finally:
        DEFAULT_PROVIDERS.clear()
        gc.unfreeze()


@pytest.fixture
def secrets_in_store(aws: None, monkeypatch: pytest.MonkeyPatch, app_url: str) -> None:
    """The database URL and SECRET_A in the parameter store, named by the functions' variables."""
    put_parameter(DATABASE_PARAMETER, app_url)
    put_parameter(AUTH_PARAMETER, SECRET_A)
    monkeypatch.setenv("DATABASE_URL_PARAMETER", DATABASE_PARAMETER)
    monkeypatch.setenv("BETTER_AUTH_SECRET_PARAMETER", AUTH_PARAMETER)


@pytest.mark.usefixtures("secrets_in_store")
def test_warm_up_reads_the_secrets_at_init_with_bounded_store_calls(
    app_url: str, lambda_init: Callable[[], FastAPI]
) -> None:
    lambda_init()
    # The store forgets both: the first request can only be served with what init read.
    boto3.client("ssm").delete_parameters(Names=[DATABASE_PARAMETER, AUTH_PARAMETER])
    settings = get_settings()
    assert settings.database_url == app_url.replace("postgresql://", "postgresql+psycopg://")
    assert settings.better_auth_secret == SECRET_A
    _assert_bounded(DEFAULT_PROVIDERS["ssm"])


def _assert_bounded(provider: Any) -> None:
    config = provider.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (1.0, 2.0)
    assert config.retries == {"total_max_attempts": 2, "mode": "standard"}


def test_settings_store_calls_are_bounded_without_the_warm_up(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Outside Lambda (the local server, a request after a failed warm-up): the read itself
    # creates the bounded clients, not Powertools' defaults.
    client = boto3.client("secretsmanager")
    client.create_secret(Name="todo/test/database-url", SecretString="postgresql://u:p@h/db")
    put_parameter(AUTH_PARAMETER, SECRET_A)
    monkeypatch.setenv("DATABASE_URL_SECRET_ID", "todo/test/database-url")
    monkeypatch.setenv("BETTER_AUTH_SECRET_PARAMETER", AUTH_PARAMETER)
    DEFAULT_PROVIDERS.clear()
    try:
        assert get_settings().better_auth_secret == SECRET_A
        _assert_bounded(DEFAULT_PROVIDERS["ssm"])
        _assert_bounded(DEFAULT_PROVIDERS["secrets"])
    finally:
        DEFAULT_PROVIDERS.clear()


@pytest.mark.usefixtures("secrets_in_store")
def test_snapstart_restore_reads_the_secrets_afresh(lambda_init: Callable[[], FastAPI]) -> None:
    lambda_init()  # the snapshot holds SECRET_A
    put_parameter(AUTH_PARAMETER, SECRET_B)  # rotated while the snapshot waited
    snapstart.after_restore()
    # Read in the restore hook, not left to the first request: the store may go now.
    boto3.client("ssm").delete_parameters(Names=[DATABASE_PARAMETER, AUTH_PARAMETER])
    assert get_settings().better_auth_secret == SECRET_B


def test_warm_up_leaves_an_unreadable_secret_to_the_first_request(
    aws: None, monkeypatch: pytest.MonkeyPatch, lambda_init: Callable[[], FastAPI]
) -> None:
    monkeypatch.setenv("DATABASE_URL_PARAMETER", DATABASE_PARAMETER)  # never put
    monkeypatch.setenv("BETTER_AUTH_SECRET", SECRET_A)
    lambda_init()  # does not raise
    put_parameter(DATABASE_PARAMETER, "postgresql://todo@db.invalid:5432/a")
    assert get_settings().database_url == "postgresql+psycopg://todo@db.invalid:5432/a"


def test_warm_up_gives_up_on_a_store_that_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, lambda_init: Callable[[], FastAPI]
) -> None:
    # A store that accepts connections and never answers (no moto: a real socket and botocore's
    # real timeouts), named by botocore's per-service endpoint variable.
    store = FaultyProxy(("127.0.0.1", 9))
    store.mode = "blackhole"
    for name, value in {
        "AWS_ENDPOINT_URL_SSM": f"http://127.0.0.1:{store.port}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "DATABASE_URL_PARAMETER": DATABASE_PARAMETER,
        "BETTER_AUTH_SECRET": SECRET_A,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    parameters.clear_caches()
    get_settings.cache_clear()
    try:
        started = time.monotonic()
        lambda_init()  # two attempts of a 2 s read, then the warm-up gives up
        init_seconds = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):  # the first request: a 503, as bounded
            get_settings()
        request_seconds = time.monotonic() - started
    finally:
        store.close()
        parameters.clear_caches()
        get_settings.cache_clear()
    assert 3.5 < init_seconds < 8
    assert 3.5 < request_seconds < 8


def test_functions_import_no_boto3_when_the_environment_has_the_secrets() -> None:
    script = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('app', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore'))))\n"
    )
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "shared"),
        "DATABASE_URL": "postgresql://u@h/db",
        "BETTER_AUTH_SECRET": SECRET_A,
    }
    for name in ("create_task", "list_tasks", "health"):
        result = subprocess.run(
            [sys.executable, "-c", script, str(ROOT / "functions" / name / "app.py")],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        # Powertools itself imports botocore's bare package (for its user agent); the SDK's
        # clients, sessions and boto3 stay unloaded.
        assert json.loads(result.stdout) == ["botocore"], name
