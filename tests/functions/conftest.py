"""Fixtures of the function tests that need more than the in-process gateway."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.devserver_process import running_server


@pytest.fixture
def three_instances(
    app_environment: dict[str, str], tmp_path: Path, api: object
) -> Iterator[list[str]]:
    """Three local servers on one database, like three Lambda containers of one function
    (``api`` cleans the tables afterwards)."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(running_server(app_environment, tmp_path / n, "--no-migrate"))
            for n in "abc"
        ]
