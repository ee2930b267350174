"""Password policy and argon2id hashing with its concurrency cap."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from argon2 import PasswordHasher

from ywmessaging.auth import passwords
from ywmessaging.auth.errors import AuthBusy, WeakPassword
from ywmessaging.auth.passwords import Passwords, check_policy


@pytest.mark.parametrize(("password", "rule"), [
    ("short1!", "too_short"),
    ("x" * 129, "too_long"),
    ("Password123", "common"),
    ("JesusChrist", "common"),
    ("aaaaaaaaaaaaaa", "common"),
    ("grace.office", "matches_email"),
    ("Grace.Office@example.org", "matches_email"),
])
def test_policy_refuses(password: str, rule: str) -> None:
    with pytest.raises(WeakPassword) as info:
        check_policy(password, email="grace.office@example.org", field="new_password")
    assert (info.value.extra["field"], info.value.extra["rule"]) == ("new_password", rule)
    assert [(e["field"], e["code"]) for e in info.value.extra["errors"]] == [
        ("new_password", rule)]
    assert (info.value.status, info.value.code) == (422, "weak_password")


def test_policy_accepts_and_normalizes() -> None:
    assert check_policy("correct horse battery") == "correct horse battery"
    # NFKC: a full-width digit becomes the ASCII one, so both keyboards give one password.
    assert check_policy("staple\uff11battery horse") == "staple1battery horse"
    long_ok = ("abc" * 43)[:128]
    assert check_policy(long_ok) == long_ok


async def test_hash_is_owasp_argon2id_and_verifies() -> None:
    pw = Passwords(2)
    stored = await pw.hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await pw.verify(stored, "correct horse battery")
    assert not await pw.verify(stored, "correct horse batterY")
    assert not pw.needs_rehash(stored)


async def test_unknown_account_costs_a_verification_and_fails() -> None:
    pw = Passwords(1)
    t0 = time.perf_counter()
    assert not await pw.verify(None, "anything at all")
    assert time.perf_counter() - t0 > 0.005  # a real argon2id verification ran
    assert not await pw.verify("not-a-hash", "anything at all")


def test_weaker_hash_needs_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("pw")
    assert Passwords(1).needs_rehash(weak)
    assert Passwords(1).needs_rehash("garbage")


class _CountingHasher:
    """Stands in for argon2 to observe how many hashes run at once."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.running = 0
        self.peak = 0
        self.lock = threading.Lock()

    def hash(self, password: str) -> str:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(self.delay)
        with self.lock:
            self.running -= 1
        return "h"


async def test_semaphore_caps_concurrent_hashes() -> None:
    pw = Passwords(2)
    fake = _CountingHasher()
    pw._hasher = fake  # type: ignore[assignment]
    await asyncio.gather(*(pw.hash(f"password-{i}") for i in range(8)))
    assert fake.peak == 2


async def test_waiting_too_long_for_a_slot_is_503(monkeypatch: Any) -> None:
    monkeypatch.setattr(passwords, "SLOT_WAIT_S", 0.05)
    pw = Passwords(1)
    fake = _CountingHasher(delay=0.5)
    pw._hasher = fake  # type: ignore[assignment]
    first = asyncio.create_task(pw.hash("one"))
    await asyncio.sleep(0.01)
    with pytest.raises(AuthBusy) as info:
        await pw.hash("two")
    assert (info.value.status, info.value.code) == (503, "auth_busy")
    await first
