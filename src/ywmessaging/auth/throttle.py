"""Login throttling and per-address rate limits, kept in the registry (every process sees them).

A key (`email:<normalized>` or `ip:<address>`, an IPv6 address counted by its /64) counts
failures. Past `free` failures each new attempt must wait a delay that doubles per failure; at
`lock_after` failures the key is locked for `lock_s`. Unknown and known emails are counted
alike, so a lock says nothing about whether an account exists. Counters start over after
`window_s` without a failure.

An attempt is *reserved* before any password is hashed: under a per-key advisory lock, the
counters are read, the verdict taken and the attempt counted as a failure, in one short registry
transaction. So however many requests arrive at once, a key lets through only as many password
checks as its counters allow. (The advisory locks live in their own namespace, class id
2037804404, "ywmt".)

A reserved attempt is also marked *in flight* on its keys (`login_attempts_in_flight`) until it
is decided: a failure drops the mark (it is counted already); a success drops it, clears the
email's failures but one per other attempt in flight, and takes its count back on the address;
an attempt whose password was never checked is taken back. An attempt refused while each
refusing key has an attempt in flight waits for them (at most WAIT_S, woken when this process
decides one, else polling) and is judged again: they may be right passwords. So concurrent
logins of one admin with the right password all get through, while a burst of wrong ones still
gets only the checks the counters allow (the waiters then meet the delay or the lock). A mark
expires after IN_FLIGHT_TTL_S, so a crashed process's attempt ends as the failure it was
reserved as.

`Limit`s are plain rate limits on unauthenticated routes that cost a hash, a database or an
email (sign-up, password reset, invitation acceptance): so many attempts per address per hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..config import Settings
from ..errors import TooManyRequests
from ..sqlq import registry as rq
from .errors import AuthBusy, LoginLocked, LoginThrottled

ACQUIRE_TIMEOUT_S = 5.0
# How long an attempt refused only while others are in flight waits for them to be decided.
WAIT_S = 2.0
POLL_START_S = 0.02   # the first wait for a decision made by another process; doubles
POLL_MAX_S = 0.2
# An in-flight mark outlives its attempt (a crashed process) only this long: well above what a
# login may take (hashing slot wait, tenant lease, argon2id).
IN_FLIGHT_TTL_S = 30.0


@dataclass(frozen=True)
class Rule:
    """Thresholds for one kind of key."""

    free: int
    lock_after: int
    lock_s: int
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    window_s: int = 3600


# An email is one account: few tries. An address may be a whole church office behind one NAT.
EMAIL_RULE = Rule(free=5, lock_after=8, lock_s=900)
IP_RULE = Rule(free=30, lock_after=100, lock_s=900)


@dataclass(frozen=True)
class Limit:
    """At most `per_window` attempts per client address per `window_s` on one kind of route."""

    kind: str
    per_window: int
    window_s: int = 3600


SIGNUP_LIMIT = Limit("signup", 20)
RESET_REQUEST_LIMIT = Limit("reset", 20)
RESET_CONFIRM_LIMIT = Limit("reset-confirm", 30)
INVITE_ACCEPT_LIMIT = Limit("invite-accept", 30)


@dataclass(frozen=True)
class Verdict:
    """Why an attempt must wait, and for how long."""

    locked: bool
    retry_after_s: float

    def error(self) -> LoginLocked | LoginThrottled:
        """The 429 to answer, with Retry-After in whole seconds."""
        headers = {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}
        return LoginLocked(headers=headers) if self.locked else LoginThrottled(headers=headers)


@dataclass(frozen=True)
class Attempt:
    """A reserved attempt: the keys it was counted on, the lock that counting set, and its id
    in `login_attempts_in_flight`."""

    keys: tuple[str, ...]
    lock: Verdict | None
    id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class Refusal:
    """Why a reservation was refused, and whether waiting for attempts in flight may help
    (every refusing key has one)."""

    verdict: Verdict
    may_wait: bool


def email_key(email: str) -> str:
    """The throttle key of a normalized email."""
    return f"email:{email}"


def client_net(address: str | None) -> str:
    """What a client address is counted as: itself (IPv4), its /64 (IPv6: one subscriber
    usually holds a whole /64 and could walk through its addresses), or `unknown`."""
    if not address:
        return "unknown"
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


def ip_key(address: str | None) -> str:
    """The throttle key of a client address."""
    return f"ip:{client_net(address)}"


def limit_key(limit: Limit, address: str | None) -> str:
    """The rate-limit key of one kind of route for a client address."""
    return f"{limit.kind}-ip:{client_net(address)}"


def verdict(rule: Rule, *, failures: int, last_failure_at: datetime,
            locked_until: datetime | None, now: datetime) -> Verdict | None:
    """Whether a key with these counters may try now (None) or must wait."""
    if locked_until is not None and locked_until > now:
        return Verdict(True, (locked_until - now).total_seconds())
    if now - last_failure_at > timedelta(seconds=rule.window_s) or failures < rule.free:
        return None
    delay = min(rule.base_delay_s * 2 ** (failures - rule.free), rule.max_delay_s)
    wait = (last_failure_at + timedelta(seconds=delay) - now).total_seconds()
    return Verdict(False, wait) if wait > 0 else None


@asynccontextmanager
async def _transaction(registry: Any) -> AsyncIterator[Any]:
    """A registry transaction on a connection of `registry` (a pool or a connection)."""
    if hasattr(registry, "acquire"):
        try:
            conn = await registry.acquire(timeout=ACQUIRE_TIMEOUT_S)
        except TimeoutError:
            raise AuthBusy(headers={"Retry-After": "2"}) from None
        try:
            async with conn.transaction():
                yield conn
        finally:
            await registry.release(conn)
    else:
        async with registry.transaction():
            yield registry


class Throttle:
    """Reads and updates the registry's `login_throttle` rows and in-flight marks."""

    def __init__(self, settings: Settings, email_rule: Rule = EMAIL_RULE,
                 ip_rule: Rule = IP_RULE) -> None:
        self.q = rq(settings.sql_dir)
        self.email_rule = email_rule
        self.ip_rule = ip_rule
        self._decided = asyncio.Event()  # set (and replaced) when this process decides one

    def _rule(self, key: str) -> Rule:
        return self.email_rule if key.startswith("email:") else self.ip_rule

    def _judge(self, rows: list[Any]) -> Refusal | None:
        """The most restrictive key's refusal (None: every key lets the attempt through)."""
        worst: Verdict | None = None
        may_wait = True
        for row in rows:
            v = verdict(self._rule(row["key"]), failures=row["failures"],
                        last_failure_at=row["last_failure_at"],
                        locked_until=row["locked_until"], now=row["now"])
            if v is None:
                continue
            may_wait = may_wait and row["in_flight"] > 0
            if worst is None or (v.locked, v.retry_after_s) > (worst.locked, worst.retry_after_s):
                worst = v
        return None if worst is None else Refusal(worst, may_wait)

    async def reserve(self, registry: Any, keys: list[str]) -> Attempt:
        """Count one attempt on every key before the password is checked, or raise the 429
        of the most restrictive key (counting nothing). A refusal that attempts in flight
        may lift waits for them to be decided first (bounded by WAIT_S)."""
        ordered = sorted(set(keys))
        deadline = time.monotonic() + WAIT_S
        pause = POLL_START_S
        while True:
            decided = self._decided  # taken before the read, so no decision is missed
            got = await self._try_reserve(registry, ordered)
            if isinstance(got, Attempt):
                return got
            left = deadline - time.monotonic()
            if not got.may_wait or left <= 0:
                raise got.verdict.error()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(decided.wait(), min(pause, left))
            pause = min(pause * 2, POLL_MAX_S)

    async def _try_reserve(self, registry: Any, ordered: list[str]) -> Attempt | Refusal:
        """One try, in one transaction under the keys' advisory locks (taken in sorted order,
        so two reservations sharing keys never deadlock)."""
        async with _transaction(registry) as conn:
            await self.q.lock_throttle_keys(conn, ordered)
            refusal = self._judge(await self.q.throttle_counters(conn, ordered))
            if refusal is not None:
                return refusal
            caused: Verdict | None = None
            for key in ordered:
                rule = self._rule(key)
                row = await self.q.record_login_failure(conn, key, rule.lock_after,
                                                        float(rule.lock_s), float(rule.window_s))
                if row["failures"] >= rule.lock_after and row["locked_until"] is not None:
                    caused = Verdict(True, float(rule.lock_s))
            attempt = Attempt(tuple(ordered), caused)
            await self.q.hold_login_attempt(conn, attempt.id, ordered, IN_FLIGHT_TTL_S)
        return attempt

    def _wake(self) -> None:
        """Wake this process's reservations waiting for a decision."""
        decided, self._decided = self._decided, asyncio.Event()
        decided.set()

    async def failed(self, registry: Any, attempt: Attempt) -> None:
        """A wrong password: the failure stays counted; the attempt is no longer in flight."""
        try:
            await self.q.drop_login_attempt(registry, attempt.id)
        finally:
            self._wake()

    async def release(self, registry: Any, attempt: Attempt) -> None:
        """Take back an attempt that was not a failure (the password was right, or was never
        checked); a lock its counting set is lifted with it."""
        await self._settle(registry, attempt, clear_email=False)

    async def succeeded(self, registry: Any, attempt: Attempt) -> None:
        """A successful login: forget the email's failures (but for the other attempts still
        in flight), take the attempt back elsewhere."""
        await self._settle(registry, attempt, clear_email=True)

    async def _settle(self, registry: Any, attempt: Attempt, *, clear_email: bool) -> None:
        """Drop the attempt's mark and change its counters in one transaction under the keys'
        locks: a reservation never sees one without the other, and two successes counting
        the attempts still in flight do not count each other."""
        try:
            async with _transaction(registry) as conn:
                await self.q.lock_throttle_keys(conn, list(attempt.keys))
                await self.q.drop_login_attempt(conn, attempt.id)
                for key in attempt.keys:
                    if clear_email and key.startswith("email:"):
                        await self.q.keep_login_attempts_in_flight(conn, key)
                    else:
                        await self.q.release_login_attempt(conn, key,
                                                           self._rule(key).lock_after)
        finally:
            self._wake()

    async def clear(self, conn: Any, key: str) -> None:
        """Forget a key's failures (after a password reset, or by an operator)."""
        await self.q.clear_login_failures(conn, key)

    async def limit(self, registry: Any, limit: Limit, address: str | None) -> None:
        """Count one attempt of a rate-limited route for this address; 429
        `too_many_requests` (with Retry-After) once the window's allowance is spent."""
        row = await self.q.count_rate_limited(registry, limit_key(limit, address),
                                              float(limit.window_s))
        if row["attempts"] > limit.per_window:
            wait = max(1, math.ceil(row["retry_after_s"]))
            raise TooManyRequests("too many attempts from this address: try again later",
                                  headers={"Retry-After": str(wait)})
