"""Fixtures of the function tests: two users with tasks, and local servers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from tests.api_client import ApiClient, Response
from tests.devserver_process import running_server


def next_page_query(response: Response) -> dict[str, str] | None:
    """The query of the ``Link: <?…>; rel="next"`` header, or None on the last page."""
    link = response.headers.get("link")
    if link is None:
        return None
    match = re.fullmatch(r'<\?([^>]*)>; rel="next"', link)
    assert match, link
    return dict(parse_qsl(match.group(1), strict_parsing=True))


def task_pages(
    api: ApiClient, user: str, token: str, params: dict[str, Any], *, max_pages: int = 20
) -> list[list[int]]:
    """Every page of ``user``'s task list from ``params`` on, by ``Link: rel="next"``: each
    page's task ids (fewer than ``max_pages`` pages, or the walk fails)."""
    pages: list[list[int]] = []
    query: dict[str, Any] | None = params
    while query is not None:
        response = api.get(f"/api/{user}/tasks", token=token, params=query)
        assert response.status == 200, response.body
        pages.append([task["id"] for task in response.json()])
        query = next_page_query(response)
        assert len(pages) < max_pages
    return pages


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


class TwoUsers:
    """Alice owns tasks; bob, with a valid token of his own, asks for them by id on his own
    path, and alice reads them back on hers."""

    def __init__(
        self,
        api: ApiClient,
        alice: str,
        bob: str,
        token_for: Callable[..., str],
        make_task: Callable[..., dict[str, Any]],
    ) -> None:
        self.api, self.alice, self.bob = api, alice, bob
        self.token_for, self.make_task = token_for, make_task

    def alices_task(self, title: str = "a task") -> dict[str, Any]:
        return self.make_task(self.alice, title)

    def bob_sends(self, method: str, task_id: object, suffix: str = "", **kwargs: Any) -> Response:
        """``method`` on ``/api/<bob>/tasks/<task_id><suffix>`` with bob's token."""
        url = f"/api/{self.bob}/tasks/{task_id}{suffix}"
        return self.api.request(method, url, token=self.token_for(self.bob), **kwargs)

    def alice_reads(self, task_id: object) -> Response:
        return self.api.get(f"/api/{self.alice}/tasks/{task_id}", token=self.token_for(self.alice))


@pytest.fixture
def two_users(
    api: ApiClient,
    alice: str,
    bob: str,
    token_for: Callable[..., str],
    make_task: Callable[..., dict[str, Any]],
) -> TwoUsers:
    return TwoUsers(api, alice, bob, token_for, make_task)
