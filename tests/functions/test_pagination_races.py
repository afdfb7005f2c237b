"""Page walks while other requests write, in one process with six database connections (six
containers racing on the database): every item that exists unchanged for the whole walk comes
exactly once, and no item comes twice, whatever is inserted, deleted, toggled or renamed around
it (README: "Paging is by key")."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.api_client import ApiClient, Response
from tests.conftest import functions_environment
from tests.functions.conftest import task_pages
from todo_core.chat import store as store_module

WRITERS = 5
WALKS = 4

Send = Callable[..., Response]


@pytest.fixture
def six_connections(api: ApiClient) -> Iterator[None]:
    with functions_environment({"DB_POOL_SIZE": str(WRITERS + 1)}):
        yield


def _while_walking(
    writers: list[Callable[[int], None]], walk: Callable[[], list[list[int]]]
) -> list[list[list[int]]]:
    """``WALKS`` walks one after another while every writer runs in a loop (its argument counts
    its rounds); the walks' pages, after the writers stopped and none failed."""
    stop = threading.Event()

    def loop(writer: Callable[[int], None]) -> int:
        rounds = 0
        while not stop.is_set():
            writer(rounds)
            rounds += 1
        return rounds

    with ThreadPoolExecutor(max_workers=len(writers)) as pool:
        running = [pool.submit(loop, writer) for writer in writers]
        try:
            walks = [walk() for _ in range(WALKS)]
        finally:
            stop.set()
        assert all(future.result(timeout=60) > 0 for future in running)
    return walks


def _once_each(pages: list[list[int]], expected: set[int]) -> None:
    seen = Counter(item for page in pages for item in page)
    assert [item for item, count in seen.items() if count > 1] == [], pages
    assert expected - set(seen) == set(), pages


@pytest.mark.usefixtures("six_connections")
@pytest.mark.parametrize("status", ["all", "pending", "completed"])
def test_list_tasks_walk_while_tasks_are_added_deleted_toggled_and_renamed_skips_and_repeats_none(
    api: ApiClient,
    alice: str,
    token_for: Callable[..., str],
    make_task: Callable[..., dict[str, Any]],
    status: str,
) -> None:
    token = token_for(alice)
    auth = {"token": token}
    url = f"/api/{alice}/tasks"

    def made(title: str, *, completed: bool = False) -> int:
        task = make_task(alice, title)
        if completed:
            assert api.patch(f"{url}/{task['id']}/complete", **auth).status == 200
        return int(task["id"])

    # Interleaved by id: stable pending and completed ones, ones renamed, toggled, deleted.
    stable: dict[bool, list[int]] = {False: [], True: []}
    renamed: dict[bool, list[int]] = {False: [], True: []}
    toggled: list[int] = []
    doomed: list[int] = []
    for n in range(12):
        for completed in (False, True):
            stable[completed].append(made(f"stable {n}", completed=completed))
            renamed[completed].append(made(f"renamed {n}", completed=completed))
        toggled.append(made(f"toggled {n}", completed=n % 2 == 0))
        doomed.append(made(f"doomed {n}"))

    def add(round_: int) -> None:
        assert api.post(url, **auth, json_body={"title": f"new {round_}"}).status == 201

    def delete(round_: int) -> None:
        if round_ < len(doomed):
            assert api.delete(f"{url}/{doomed[round_]}", **auth).status == 204

    def toggle(round_: int) -> None:
        task_id = toggled[round_ % len(toggled)]
        assert api.patch(f"{url}/{task_id}/complete", **auth).status == 200

    def rename(round_: int) -> None:
        task_id = [*renamed[False], *renamed[True]][round_ % 24]
        assert api.put(f"{url}/{task_id}", **auth, json_body={"title": f"r{round_}"}).status == 200

    walks = _while_walking(
        [add, delete, toggle, rename, toggle],
        lambda: task_pages(api, alice, token, {"status": status, "limit": 3}, max_pages=200),
    )
    wanted = [False, True] if status == "all" else [status == "completed"]
    expected = {task for completed in wanted for task in stable[completed] + renamed[completed]}
    if status == "all":
        expected |= set(toggled)
    for pages in walks:
        _once_each(pages, expected)
        if status != "all":  # no task of the other status
            listed = {task for page in pages for task in page}
            other = set(stable[status == "pending"] + renamed[status == "pending"])
            assert listed & other == set()
        ids = [task for page in pages for task in page]
        assert ids == sorted(ids, reverse=True)  # newest first across pages


def _history_walk(
    api: ApiClient, url: str, token: str, limit: int, *, key: str = "id"
) -> list[list[int]]:
    pages: list[list[int]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = api.get(url, token=token, params=params)
        assert response.status == 200, response.body
        page = response.json()
        pages.append([item[key] for item in page["items"]])
        if page["next_cursor"] is None:
            return pages
        params = {"limit": limit, "cursor": page["next_cursor"]}
        assert len(pages) < 200


@pytest.mark.usefixtures("six_connections")
def test_list_conversations_walk_while_turns_are_sent_added_and_deleted_skips_and_repeats_none(
    api: ApiClient, send_chat: Send, alice: str, token_for: Callable[..., str]
) -> None:
    def new(message: str) -> int:
        response = send_chat(alice, message)
        assert response.status == 200, response.body
        return int(response.json()["conversation_id"])

    stable: list[int] = []
    busy: list[int] = []
    doomed: list[int] = []
    for n in range(8):
        stable.append(new(f"stable {n}"))
        busy.append(new(f"busy {n}"))
        doomed.append(new(f"doomed {n}"))
    token = token_for(alice)

    def talk(round_: int) -> None:
        response = send_chat(alice, "list my tasks", busy[round_ % len(busy)])
        assert response.status == 200, response.body

    def add(round_: int) -> None:
        new(f"new {round_}")

    def delete(round_: int) -> None:
        if round_ < len(doomed):
            url = f"/api/{alice}/conversations/{doomed[round_]}"
            assert api.delete(url, token=token).status == 204

    walks = _while_walking(
        [talk, talk, add, delete],
        lambda: _history_walk(api, f"/api/{alice}/conversations", token, 2),
    )
    for pages in walks:
        _once_each(pages, set(stable))
        order = [c for page in pages for c in page if c in stable]
        assert order == sorted(stable, reverse=True)  # untouched: newest first, as created


@pytest.mark.usefixtures("six_connections")
def test_list_messages_walk_while_turns_are_added_neither_skips_nor_repeats(
    api: ApiClient, send_chat: Send, alice: str, token_for: Callable[..., str]
) -> None:
    conversation_id = send_chat(alice, "turn 0").json()["conversation_id"]
    for n in range(1, 12):
        assert send_chat(alice, f"turn {n}", conversation_id).status == 200
    url = f"/api/{alice}/conversations/{conversation_id}/messages"
    token = token_for(alice)
    before = {m for page in _history_walk(api, url, token, 200) for m in page}
    assert len(before) == 24

    def talk(round_: int) -> None:
        response = send_chat(alice, f"more {round_}", conversation_id)
        assert response.status == 200, response.body

    walks = _while_walking([talk, talk, talk], lambda: _history_walk(api, url, token, 3))
    for pages in walks:
        _once_each(pages, before)
        # Each page oldest first, pages newest first: reversed, one turn-ordered sequence.
        ids = [m for page in reversed(pages) for m in page]
        assert [m for m in ids if m in before] == sorted(before)


def test_list_conversations_turn_with_an_earlier_clock_never_moves_a_conversation_back(
    api: ApiClient,
    send_chat: Send,
    alice: str,
    token_for: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A turn's statements read the clock before they run: one that read it, then waited (for a
    # pooled connection, for the row lock behind a later turn's statement), or ran in a
    # container whose clock lags, commits an activity older than the conversation's last.
    older, newer = (send_chat(alice, f"add {n}").json()["conversation_id"] for n in range(2))
    url, token = f"/api/{alice}/conversations", token_for(alice)
    first = api.get(url, token=token, params={"limit": 1}).json()
    assert [c["id"] for c in first["items"]] == [newer]
    real_now = store_module.utc_now

    def lagging() -> datetime:
        return real_now() - timedelta(seconds=5)

    monkeypatch.setattr(store_module, "utc_now", lagging)
    assert send_chat(alice, "list my tasks", newer).status == 200
    monkeypatch.setattr(store_module, "utc_now", real_now)
    rest: list[int] = []
    params: dict[str, Any] = {"limit": 1, "cursor": first["next_cursor"]}
    while params["cursor"] is not None:
        page = api.get(url, token=token, params=params).json()
        rest += [c["id"] for c in page["items"]]
        params["cursor"] = page["next_cursor"]
    assert rest == [older]  # not the one already listed, again
    latest = api.get(url, token=token).json()["items"]
    assert [c["id"] for c in latest] == [newer, older]
    assert latest[0]["updated_at"] == first["items"][0]["updated_at"]  # its last activity
