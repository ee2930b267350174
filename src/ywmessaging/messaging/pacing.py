"""Send pacing (token buckets per sender number and per church) and retry backoff.

A bucket hands out *reservations*: `reserve()` takes a token now and says how long to wait
before using it (tokens may go negative, which queues later callers behind earlier ones).
A rate of 0 or less means unpaced. The clock is injectable; nothing here sleeps.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: float = 1.0, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()
        self._blocked_until = 0.0

    @property
    def paced(self) -> bool:
        """False when the bucket lets everything through."""
        return self.rate > 0

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def delay(self) -> float:
        """Seconds until a token would be available (without taking it)."""
        now = self._clock()
        blocked = max(0.0, self._blocked_until - now)
        if not self.paced:
            return blocked
        self._refill(now)
        wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
        return max(wait, blocked)

    def reserve(self) -> float:
        """Take a token; the seconds to wait before using it."""
        wait = self.delay()
        if self.paced:
            self._tokens -= 1
        return wait

    def pause_until(self, when: float) -> None:
        """Hand out nothing before `when` (a carrier's Retry-After)."""
        self._blocked_until = max(self._blocked_until, when)


@dataclass
class Pacer:
    """The buckets of one church: one for the church, one per sender number."""

    church_rate: float
    number_rate: float
    clock: Clock = time.monotonic
    church: TokenBucket = field(init=False)
    numbers: dict[str, TokenBucket] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.church = TokenBucket(self.church_rate, max(1.0, self.church_rate), self.clock)

    def _number(self, number: str) -> TokenBucket:
        bucket = self.numbers.get(number)
        if bucket is None:
            bucket = TokenBucket(self.number_rate, max(1.0, self.number_rate), self.clock)
            self.numbers[number] = bucket
        return bucket

    def delay(self, number: str) -> float:
        """Seconds before a message from `number` could go (nothing taken)."""
        return max(self.church.delay(), self._number(number).delay())

    def reserve(self, number: str) -> float:
        """Take a slot for one message from `number`; the seconds to wait before sending."""
        return max(self.church.reserve(), self._number(number).reserve())

    def pause(self, number: str, seconds: float) -> None:
        """The carrier said to slow down: nothing from this church or number for `seconds`."""
        until = self.clock() + max(0.0, seconds)
        self.church.pause_until(until)
        self._number(number).pause_until(until)


def backoff(attempt: int, *, base: float = 2.0, cap: float = 300.0,
            retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds before retry number `attempt` (1-based): full jitter over an exponential
    ceiling, never sooner than the carrier's `retry_after`."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    jitter = (rng or random).uniform(0.0, ceiling)
    return max(jitter, retry_after or 0.0)
