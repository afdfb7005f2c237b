"""The container's verified HS256 tokens: a token is verified once, then trusted only as the
same string, with the same settings, until its expiry or the cache's own limit."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from devserver.mint_token import mint_token
from tests.api_client import ApiClient
from tests.conftest import TEST_SECRET
from todo_core import deps
from todo_core.auth import LEEWAY_SECONDS, VerifiedToken
from todo_core.deps import VerifiedTokens
from todo_core.errors import NotAuthenticated
from todo_core.settings import load_settings

SETTINGS = load_settings(
    {"DATABASE_URL": "postgresql://x@127.0.0.1/x", "BETTER_AUTH_SECRET": TEST_SECRET}
)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    verify = deps.verify

    def counting(token: str, **kwargs: object) -> VerifiedToken:
        calls.append(token)
        return verify(token, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(deps, "verify", counting)
    return calls


def test_verified_token_is_verified_once(verifications: list[str]) -> None:
    tokens = VerifiedTokens()
    token = mint_token("alice", secret=TEST_SECRET)
    assert [tokens.subject(token, SETTINGS) for _ in range(3)] == ["alice"] * 3
    assert verifications == [token]


def test_verified_token_checked_again_after_its_expiry(verifications: list[str]) -> None:
    clock = Clock()
    tokens = VerifiedTokens(clock=clock, max_age=3600)
    token = mint_token("alice", secret=TEST_SECRET, minutes=1)
    tokens.subject(token, SETTINGS)
    clock.now += 60 + LEEWAY_SECONDS - 2
    tokens.subject(token, SETTINGS)
    assert len(verifications) == 1
    clock.now += 3  # past exp + leeway: the cache no longer vouches for it
    tokens.subject(token, SETTINGS)
    assert len(verifications) == 2


def test_verified_token_checked_again_after_max_age(verifications: list[str]) -> None:
    clock = Clock()
    tokens = VerifiedTokens(clock=clock, max_age=60)
    token = mint_token("alice", secret=TEST_SECRET, minutes=30)
    tokens.subject(token, SETTINGS)
    clock.now += 61
    tokens.subject(token, SETTINGS)
    assert len(verifications) == 2


def test_verified_token_checked_again_with_new_settings(verifications: list[str]) -> None:
    tokens = VerifiedTokens()
    token = mint_token("alice", secret=TEST_SECRET)
    tokens.subject(token, SETTINGS)
    rotated = load_settings(
        {"DATABASE_URL": "postgresql://x@127.0.0.1/x", "BETTER_AUTH_SECRET": "r" * 40}
    )
    with pytest.raises(NotAuthenticated):  # signed with the secret that was rotated away
        tokens.subject(token, rotated)
    assert len(verifications) == 2


def test_verified_tokens_never_keep_a_failure(verifications: list[str]) -> None:
    tokens = VerifiedTokens()
    forged = mint_token("alice", secret="f" * 40)
    for _ in range(2):
        with pytest.raises(NotAuthenticated):
            tokens.subject(forged, SETTINGS)
    assert len(verifications) == 2


def test_verified_tokens_keep_at_most_max_entries(verifications: list[str]) -> None:
    tokens = VerifiedTokens(max_entries=2)
    first, second, third = (mint_token(user, secret=TEST_SECRET) for user in ("a", "b", "c"))
    for token in (first, second, third, second, third, first):
        tokens.subject(token, SETTINGS)
    # ``first`` was dropped to make room for ``third``, so it is verified twice.
    assert verifications == [first, second, third, first]


def test_verified_token_still_belongs_to_its_user_only(
    api: ApiClient, alice: str, bob: str, token_for: Callable[..., str]
) -> None:
    token = token_for(alice)
    assert api.get(f"/api/{alice}/tasks", token=token).status == 200
    assert api.get(f"/api/{bob}/tasks", token=token).status == 403  # the same, now cached, token
