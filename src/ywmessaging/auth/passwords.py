"""argon2id password hashing (OWASP parameters) with a cap on hashes computed at once."""

from __future__ import annotations

import asyncio
import os
import secrets
import unicodedata
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .common_passwords import COMMON_PASSWORDS
from .errors import AuthBusy, WeakPassword

T = TypeVar("T")

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1 (one of the listed minimums).
MEMORY_KIB = 19_456
TIME_COST = 2
PARALLELISM = 1
MIN_LENGTH = 10
MAX_LENGTH = 128
# How long a login may wait for a free hashing slot before it is told to come back (503).
SLOT_WAIT_S = 10.0


def normalize(password: str) -> str:
    """NFKC form, so the same password typed on two keyboards hashes the same."""
    return unicodedata.normalize("NFKC", password)


def check_policy(password: str, *, email: str = "", field: str = "password") -> str:
    """The normalized password, or WeakPassword naming `field` and the rule it broke."""
    pw = normalize(password)
    if len(pw) < MIN_LENGTH:
        raise WeakPassword(f"{field} must be at least {MIN_LENGTH} characters", field=field,
                           rule="too_short")
    if len(pw) > MAX_LENGTH:
        raise WeakPassword(f"{field} must be at most {MAX_LENGTH} characters", field=field,
                           rule="too_long")
    lowered = pw.lower()
    local = email.split("@", 1)[0]
    if lowered in COMMON_PASSWORDS or len(set(lowered)) < 3:
        raise WeakPassword(f"{field} is too common", field=field, rule="common")
    if email and lowered in (email, local):
        raise WeakPassword(f"{field} must not be the email address", field=field,
                           rule="matches_email")
    return pw


class Passwords:
    """Hashes and verifies in worker threads, at most `concurrency` at once.

    Each argon2id hash takes 19 MiB and tens of milliseconds of one CPU; the semaphore keeps a
    burst of logins from exhausting memory or starving the event loop's other work.
    """

    def __init__(self, concurrency: int = 0) -> None:
        self._hasher = PasswordHasher(
            time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM,
            hash_len=32, salt_len=16, type=Type.ID,
        )
        self._slots = asyncio.Semaphore(concurrency or os.cpu_count() or 1)
        # Verified when the account is unknown, so both paths cost one argon2id verification.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        try:
            async with asyncio.timeout(SLOT_WAIT_S):
                await self._slots.acquire()
        except TimeoutError:
            raise AuthBusy(headers={"Retry-After": "2"}) from None
        try:
            return await asyncio.to_thread(fn, *args)
        finally:
            self._slots.release()

    async def hash(self, password: str) -> str:
        """The PHC string of the normalized password."""
        return await self._run(self._hasher.hash, normalize(password))

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored`; with no stored hash, verifies a dummy and fails."""
        target = stored or self._dummy
        ok = await self._run(self._check, target, normalize(password))
        return ok and stored is not None

    def _check(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether `stored` was made with other parameters than today's."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True
