"""Circuit breakers: one per tenant and one per database server.

closed → open after `threshold` consecutive failures (or at once on a definitive fault such as
a dropped database) → half-open when the cool-down has passed, where exactly one attempt is let
through → closed on its success, open again (with a doubled cool-down, up to `max_cooldown`) on
its failure. While open, callers are refused at once; nothing waits.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from enum import StrEnum

import structlog

from ..errors import TenantUnavailable
from .health import Fault

log = structlog.get_logger("ywm.breaker")

Clock = Callable[[], float]

THRESHOLD = 3
BASE_COOLDOWN = 1.0
MAX_COOLDOWN = 30.0
# A half-open trial that never reports back (its caller was cancelled) frees the slot after this.
TRIAL_TIMEOUT = 10.0


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Breaker:
    """A consecutive-failure circuit breaker with exponential cool-down."""

    def __init__(self, clock: Clock, *, threshold: int = THRESHOLD,
                 base_cooldown: float = BASE_COOLDOWN, max_cooldown: float = MAX_COOLDOWN) -> None:
        self._clock = clock
        self.threshold = threshold
        self.base_cooldown = base_cooldown
        self.max_cooldown = max_cooldown
        self._state = BreakerState.CLOSED
        self.failures = 0
        self.cooldown = base_cooldown
        self.opened_at = 0.0
        self._trial_started: float | None = None
        self.last_error: str | None = None
        self.last_failure_at = 0.0

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose cool-down has passed reads as half-open)."""
        if self._state is BreakerState.OPEN and self._clock() >= self.opened_at + self.cooldown:
            return BreakerState.HALF_OPEN
        return self._state

    def allow(self, *, consume: bool = True) -> bool:
        """Whether one attempt may go ahead now; in half-open only the first caller gets True
        (`consume=False` asks without taking the half-open trial)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            return False
        now = self._clock()
        if self._trial_started is not None and now - self._trial_started < TRIAL_TIMEOUT:
            return False
        if consume:
            self._state = BreakerState.HALF_OPEN
            self._trial_started = now
        return True

    def retry_after(self) -> int:
        """Whole seconds until an attempt may be let through again (at least 1)."""
        if self._state is BreakerState.OPEN:
            left = self.opened_at + self.cooldown - self._clock()
            return max(1, math.ceil(left))
        return 1

    def record_success(self) -> bool:
        """Note a success; returns True if this closed the breaker."""
        was = self._state
        self._state = BreakerState.CLOSED
        self.failures = 0
        self.cooldown = self.base_cooldown
        self._trial_started = None
        return was is not BreakerState.CLOSED

    def record_failure(self, error: str | None = None) -> bool:
        """Note a failure; returns True if this opened the breaker."""
        self.last_error = error
        self.failures += 1
        self.last_failure_at = self._clock()
        if self._state is BreakerState.HALF_OPEN:
            self._open(self.cooldown * 2)
            return True
        if self._state is BreakerState.CLOSED and self.failures >= self.threshold:
            self._open(self.base_cooldown)
            return True
        return False

    def trip(self, error: str | None = None) -> bool:
        """Open at once (a definitive fault); returns True if it was not open already."""
        self.last_error = error
        self.failures += 1
        self.last_failure_at = self._clock()
        if self._state is BreakerState.OPEN:
            self.opened_at = self._clock()
            return False
        cooldown = self.cooldown * 2 if self._state is BreakerState.HALF_OPEN else self.cooldown
        self._open(cooldown)
        return True

    def _open(self, cooldown: float) -> None:
        self._state = BreakerState.OPEN
        self.cooldown = min(max(cooldown, self.base_cooldown), self.max_cooldown)
        self.opened_at = self._clock()
        self._trial_started = None

    def snapshot(self) -> dict[str, object]:
        """State, failures, cool-down and last error (operator endpoint)."""
        return {
            "state": self.state.value, "consecutive_failures": self.failures,
            "cooldown_s": self.cooldown,
            "retry_after_s": self.retry_after() if self.state is not BreakerState.CLOSED else 0,
            "last_error": self.last_error,
        }


class BreakerBoard:
    """The breakers of every tenant (kept only while not plainly closed) and every server."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.tenants: dict[uuid.UUID, Breaker] = {}
        self.servers: dict[int, Breaker] = {}

    def check(self, tenant_id: uuid.UUID, server_id: int) -> None:
        """Raise TenantUnavailable unless both breakers let an attempt through now."""
        tb, sb = self.tenants.get(tenant_id), self.servers.get(server_id)
        for breaker, what in ((sb, "database server"), (tb, "database")):
            if breaker is not None and not breaker.allow(consume=False):
                raise TenantUnavailable(
                    f"the church's {what} is failing; retrying shortly",
                    headers={"Retry-After": str(breaker.retry_after())},
                )
        for breaker in (sb, tb):
            if breaker is not None:
                breaker.allow()

    def record_success(self, tenant_id: uuid.UUID, server_id: int) -> None:
        """Close the tenant's and the server's breakers after a working connection."""
        tb = self.tenants.pop(tenant_id, None)
        if tb is not None and tb.record_success():
            log.info("tenant_breaker_closed", tenant_id=str(tenant_id))
        sb = self.servers.get(server_id)
        busy = sb is not None and (sb.failures or sb.state is not BreakerState.CLOSED)
        if busy and sb is not None and sb.record_success():
            log.info("server_breaker_closed", server_id=server_id)

    def record_failure(self, tenant_id: uuid.UUID, server_id: int, fault: Fault,
                       detail: str) -> tuple[bool, bool]:
        """Count a failure; returns (tenant breaker opened, server breaker opened)."""
        if fault is Fault.NONE:
            return False, False
        tb = self.tenants.get(tenant_id)
        if tb is None:
            tb = self.tenants[tenant_id] = Breaker(self._clock)
        t_opened = tb.trip(detail) if fault is Fault.DEFINITIVE else tb.record_failure(detail)
        s_opened = False
        if fault is Fault.SERVER:
            sb = self.servers.get(server_id)
            if sb is None:
                sb = self.servers[server_id] = Breaker(self._clock)
            s_opened = sb.record_failure(detail)
        if t_opened:
            log.warning("tenant_breaker_opened", tenant_id=str(tenant_id), fault=fault.value,
                        error=detail, cooldown_s=tb.cooldown)
        if s_opened:
            log.warning("server_breaker_opened", server_id=server_id, error=detail)
        return t_opened, s_opened

    def counts(self) -> dict[tuple[str, str], int]:
        """(scope, state) → number of breakers, plainly closed tenants not counted."""
        out: dict[tuple[str, str], int] = {}
        for scope, board in (("tenant", self.tenants.values()), ("server", self.servers.values())):
            for state in BreakerState:
                out[(scope, state.value)] = 0
            for b in board:
                out[(scope, b.state.value)] += 1
        return out

    def prune(self, older_than: float = 60.0) -> None:
        """Forget closed tenant breakers whose last failure is old (bounded memory)."""
        now = self._clock()
        for tid in [t for t, b in self.tenants.items()
                    if b.state is BreakerState.CLOSED and now - b.last_failure_at > older_than]:
            del self.tenants[tid]
