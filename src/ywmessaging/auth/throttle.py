"""Login throttling kept in the registry (every process sees the same counters).

A key (`email:<normalized>` or `ip:<address>`) counts failures. Past `free` failures each new
attempt must wait a delay that doubles per failure; at `lock_after` failures the key is locked
for `lock_s`. Unknown and known emails are counted alike, so a lock says nothing about whether
an account exists. Counters start over after `window_s` without a failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..config import Settings
from ..sqlq import registry as rq
from .errors import LoginLocked, LoginThrottled


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
class Verdict:
    """Why an attempt must wait, and for how long."""

    locked: bool
    retry_after_s: float

    def error(self) -> LoginLocked | LoginThrottled:
        """The 429 to answer, with Retry-After in whole seconds."""
        headers = {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}
        return LoginLocked(headers=headers) if self.locked else LoginThrottled(headers=headers)


def email_key(email: str) -> str:
    """The throttle key of a normalized email."""
    return f"email:{email}"


def ip_key(address: str | None) -> str:
    """The throttle key of a client address."""
    return f"ip:{address or 'unknown'}"


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


class Throttle:
    """Reads and updates the registry's `login_throttle` rows."""

    def __init__(self, settings: Settings, email_rule: Rule = EMAIL_RULE,
                 ip_rule: Rule = IP_RULE) -> None:
        self.q = rq(settings.sql_dir)
        self.email_rule = email_rule
        self.ip_rule = ip_rule

    def _rule(self, key: str) -> Rule:
        return self.email_rule if key.startswith("email:") else self.ip_rule

    async def check(self, conn: Any, keys: list[str]) -> set[str]:
        """Raise the 429 of the most restrictive key, if any must wait; else the keys that
        have counters (so a success clears only what exists)."""
        worst: Verdict | None = None
        rows = await self.q.throttle_counters(conn, keys)
        for row in rows:
            v = verdict(self._rule(row["key"]), failures=row["failures"],
                        last_failure_at=row["last_failure_at"],
                        locked_until=row["locked_until"], now=row["now"])
            if v is not None and (worst is None or (v.locked, v.retry_after_s) >
                                  (worst.locked, worst.retry_after_s)):
                worst = v
        if worst is not None:
            raise worst.error()
        return {row["key"] for row in rows}

    async def fail(self, conn: Any, keys: list[str]) -> Verdict | None:
        """Count a failure on every key; the lock it caused, if any."""
        caused: Verdict | None = None
        for key in keys:
            rule = self._rule(key)
            row = await self.q.record_login_failure(conn, key, rule.lock_after,
                                                    float(rule.lock_s), float(rule.window_s))
            if row["failures"] >= rule.lock_after and row["locked_until"] is not None:
                caused = Verdict(True, float(rule.lock_s))
        return caused

    async def clear(self, conn: Any, key: str) -> None:
        """Forget a key's failures (after a successful login or password reset)."""
        await self.q.clear_login_failures(conn, key)
