"""Runs the local server as a separate process, and calls it over HTTP, for end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from email.message import Message
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def running_server(env: dict[str, str], cwd: Path, *args: str) -> Iterator[str]:
    """Start ``python -m devserver`` on a free port; yield its base URL; stop it.

    Its output (one JSON log line per request, and metrics) goes to ``cwd/devserver.log``, never
    to a pipe nobody reads, which would fill up and stall the server."""
    cwd.mkdir(parents=True, exist_ok=True)
    log = cwd / "devserver.log"
    environment = {**os.environ, **env, "PYTHONPATH": f"{ROOT / 'shared'}:{ROOT / 'infra'}"}
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-u", "-m", "devserver", "--port", "0", *args],
            cwd=cwd,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            yield _wait_for_banner(process, log)
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_for_banner(process: subprocess.Popen[str], log: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("Todo API on http://"):
                return line.split()[3]
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"the local server did not start:\n{log.read_text()}")


def _lower(headers: Message) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def call(
    method: str, url: str, *, token: str | None = None, body: object = None
) -> tuple[int, dict[str, str], object]:
    data = json.dumps(body).encode() if body is not None else None
    request = Request(url, data=data, method=method)  # noqa: S310  (loopback only)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urlopen(request, timeout=10) as response:  # noqa: S310
            raw = response.read()
            return response.status, _lower(response.headers), json.loads(raw) if raw else None
    except HTTPError as error:
        raw = error.read()
        return error.code, _lower(error.headers), json.loads(raw) if raw else None


def post_raw(url: str, *, token: str, body: object, key: str) -> tuple[int, bytes]:
    """POST JSON with an Idempotency-Key; the status and the body's exact bytes."""
    request = Request(url, data=json.dumps(body).encode(), method="POST")  # noqa: S310
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    request.add_header("Idempotency-Key", key)
    try:
        with urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.read()
    except HTTPError as error:
        return error.code, error.read()


def race_keyed_posts(
    bases: list[str], path: str, *, token: str, bodies: list[object], copies: int = 2
) -> list[list[tuple[int, bytes]]]:
    """For each body in turn, POST it ``copies`` times to every server in ``bases`` at once,
    all under one Idempotency-Key (``race-<n>``): racing retries of one request. Returns each
    round's responses."""
    rounds = []
    with ThreadPoolExecutor(max_workers=len(bases) * copies) as pool:
        for n, body in enumerate(bodies):
            futures = [
                pool.submit(post_raw, f"{base}{path}", token=token, key=f"race-{n}", body=body)
                for base in bases * copies
            ]
            rounds.append([future.result(timeout=30) for future in futures])
    return rounds


def readme_task_session(base: str, token: str, user: str) -> None:
    """The README's task session: create, list, complete, delete, list again."""
    status, _, task = call("POST", f"{base}/api/{user}/tasks", token=token, body={"title": "Milk"})
    assert status == 201
    assert isinstance(task, dict)
    status, _, tasks = call("GET", f"{base}/api/{user}/tasks", token=token)
    assert (status, [t["title"] for t in tasks]) == (200, ["Milk"])  # type: ignore[union-attr]
    status, _, done = call("PATCH", f"{base}/api/{user}/tasks/{task['id']}/complete", token=token)
    assert (status, done["completed"]) == (200, True)  # type: ignore[index]
    status, _, _ = call("DELETE", f"{base}/api/{user}/tasks/{task['id']}", token=token)
    assert status == 204
    status, _, tasks = call("GET", f"{base}/api/{user}/tasks", token=token)
    assert (status, tasks) == (200, [])


def readme_chat_session(base: str, token: str, user: str) -> None:
    """The README's chat session: add, list, complete, delete, then read the history back."""
    chat = f"{base}/api/{user}/chat"
    status, _, first = call("POST", chat, token=token, body={"message": "add buy milk"})
    assert status == 200, first
    assert isinstance(first, dict)
    conversation = first["conversation_id"]
    replies = [first["response"]]
    for message in ("list my tasks", "complete it", "delete it"):
        body = {"message": message, "conversation_id": conversation}
        status, _, reply = call("POST", chat, token=token, body=body)
        assert status == 200, reply
        replies.append(reply["response"])  # type: ignore[index]
    assert replies[0].startswith("Added “buy milk”")
    assert "buy milk" in replies[1]
    assert replies[2].startswith("Marked “buy milk”")
    assert replies[3].startswith("Deleted “buy milk”")
    status, _, page = call(
        "GET", f"{base}/api/{user}/conversations/{conversation}/messages", token=token
    )
    assert status == 200
    assert [m["role"] for m in page["items"]] == ["user", "assistant"] * 4  # type: ignore[index]
    status, _, conversations = call("GET", f"{base}/api/{user}/conversations", token=token)
    assert [c["id"] for c in conversations["items"]] == [conversation]  # type: ignore[index]
