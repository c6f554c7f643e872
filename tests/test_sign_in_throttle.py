"""Password guessing (issue 12): throttled per address and user, locked after a run of
wrong passwords, hashed off the event loop; the token answer is never cached."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from etomcrm.cli import app as cli
from etomcrm.config import get_settings
from etomcrm.db import session_scope, utcnow
from etomcrm.security.service import create_user, login

PASSWORD = "correct horse battery"


def _sign_in(client: TestClient, password: str, username: str = "anna.sales") -> httpx.Response:
    return client.post("/auth/token", json={"username": username, "password": password})


@pytest.fixture
def anna(client: TestClient) -> str:
    with session_scope() as session:
        create_user(session, "anna.sales", PASSWORD, "sales")
    return "anna.sales"


def test_a_run_of_wrong_passwords_locks_the_user_even_against_the_right_one(
    client: TestClient, anna: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a lock after 5 failures and no rate limit in the way
    settings = get_settings()
    monkeypatch.setattr(settings, "login_lockout_failures", 5)
    # when someone guesses five times
    answers = [_sign_in(client, f"guess number {n}") for n in range(5)]
    # then the first four are plain refusals and the fifth locks the user
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 429]
    # and even the right password is refused while locked, saying until when and what to do
    locked = _sign_in(client, PASSWORD)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 14 * 60
    message = locked.json()["message"]
    assert "locked after 5 wrong passwords" in message and "etomcrm user unlock" in message
    # when the administrator unlocks it, the right password works again
    assert CliRunner().invoke(cli, ["user", "unlock", anna]).exit_code == 0
    assert _sign_in(client, PASSWORD).status_code == 200


def test_the_lock_ends_by_itself_and_a_success_resets_the_count(
    client: TestClient, anna: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "login_lockout_failures", 3)
    start = utcnow()
    # given a user locked by three failures
    with session_scope() as session:
        outcomes = [login(session, anna, "wrong password", now=start) for _ in range(3)]
    assert outcomes[-1].locked_now
    # when the lock time has passed, the right password works
    later = start + timedelta(minutes=get_settings().login_lockout_minutes, seconds=1)
    with session_scope() as session:
        assert login(session, anna, PASSWORD, now=later).token
    # and two failures after a success do not lock (the count started again)
    with session_scope() as session:
        again = [login(session, anna, "wrong password", now=later) for _ in range(2)]
    assert not any(o.locked_now for o in again)
    assert all(o.error is not None and o.error.status == 401 for o in again)


def test_one_address_gets_a_limited_number_of_attempts_a_minute(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given at most 4 attempts a minute from one address, whatever the user names
    monkeypatch.setattr(get_settings(), "login_attempts_per_address_per_minute", 4)
    answers = [_sign_in(client, "whatever1234", username=f"user{n}") for n in range(6)]
    # then the fifth and sixth are refused with 429 and a Retry-After
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 429, 429]
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
    assert answers[-1].json()["code"] == "TOO_MANY_REQUESTS"


def test_the_token_answer_is_not_cached_and_nothing_is_sniffed(
    client: TestClient, anna: str
) -> None:
    answer = _sign_in(client, PASSWORD)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert client.get("/health").headers["x-content-type-options"] == "nosniff"


def test_the_user_is_told_of_a_lock_at_the_next_sign_in_and_only_then(
    client: TestClient, anna: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a user locked by someone guessing, and the lock lifted by an administrator
    monkeypatch.setattr(get_settings(), "login_lockout_failures", 3)
    assert [_sign_in(client, f"guess {n}").status_code for n in range(3)][-1] == 429
    assert CliRunner().invoke(cli, ["user", "unlock", anna]).exit_code == 0
    # when the user signs in with the right password
    first = _sign_in(client, PASSWORD)
    # then the answer tells them of the lock, when it was and what to do
    assert first.status_code == 200
    notice = first.json()["notice"]
    assert "locked on" in notice and "tell your administrator" in notice
    # and the next sign-in has nothing more to tell
    assert "notice" not in _sign_in(client, PASSWORD).json()
