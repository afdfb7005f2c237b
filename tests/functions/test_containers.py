"""The local server runs several containers of a function as threads of one process (as Lambda
runs several containers): their first requests, arriving together, must share one engine. Each
creating its own left all but one engine's connection open and unreachable (found as a
ResourceWarning in whichever later test the garbage collector ran)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine

from tests.api_client import ApiClient
from tests.conftest import functions_environment
from todo_core import db
from todo_core.settings import Settings

CONTAINERS = 6


def test_containers_starting_together_share_one_engine(
    api: ApiClient,
    app_environment: dict[str, str],
    token_for: Callable[..., str],
    alice: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[Engine] = []
    create = db._create_postgres_engine

    def slow_create(settings: Settings) -> Engine:
        time.sleep(0.05)  # widen the window in which the others ask for the engine
        engine = create(settings)
        created.append(engine)
        return engine

    monkeypatch.setattr(db, "_create_postgres_engine", slow_create)
    token = token_for(alice)
    with functions_environment({}):  # a new deployment: no engine yet
        with ThreadPoolExecutor(max_workers=CONTAINERS) as pool:
            responses = list(
                pool.map(lambda _: api.get(f"/api/{alice}/tasks", token=token), range(CONTAINERS))
            )
        assert [r.status for r in responses] == [200] * CONTAINERS
        assert len(created) == 1
        # Nothing unreachable holds an open connection (pytest turns its warning into a failure).
        gc.collect()
