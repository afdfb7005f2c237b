"""The Makefile's own promises: `make help` lists every target (README: "`make help` lists the
rest"), and `make token` prints the token README's "Try it" uses: signed with the local
development secret, which tests/infra/test_local_default.py shows `make run` accepts."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import jwt

from devserver.local_defaults import LOCAL_DEV_SECRET

ROOT = Path(__file__).resolve().parents[2]


def make(*arguments: str, env: dict[str, str] | None = None) -> str:
    """``make -s`` in the project's root; its standard output (it must succeed)."""
    completed = subprocess.run(
        ["make", "-s", *arguments],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def _phony_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    declared = re.search(r"^\.PHONY:(.*)$", text, re.MULTILINE)
    assert declared is not None
    return set(declared.group(1).split())


def test_make_help_lists_every_target_with_its_description() -> None:
    listed = {}
    for line in make("help").splitlines():
        name, _, description = line.strip().partition(" ")
        listed[name] = description.strip()
    assert set(listed) == _phony_targets()
    assert all(listed.values()), listed


def test_make_token_prints_an_hour_long_token_for_user_signed_with_the_local_secret() -> None:
    output = make("token", "USER=alice", env={"BETTER_AUTH_SECRET": ""})
    token = output.strip()
    assert output == token + "\n", "make token prints the token and nothing else"
    claims = jwt.decode(token, LOCAL_DEV_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice"
    assert abs(claims["exp"] - (time.time() + 3600)) < 60
