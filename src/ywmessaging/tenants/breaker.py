"""Circuit breakers: one per tenant and one per database server.

closed → open after `threshold` consecutive failures (or at once on a definitive fault such as
a dropped database) → half-open when the cool-down has passed, where exactly one attempt is let
through → closed on its success, open again (with a doubled cool-down, up to `max_cooldown`) on
its failure. While open, callers are refused at once; nothing waits.

The half-open *trial* is taken only by a pool start that has passed every other check (gating,
cap, budget) and is about to connect; a start always settles it (success, failure, or an
explicit release when it ended without an answer about the database), so a request that was
refused for capacity or went away never holds a server's trial. A breaker opened by a
definitive fault (database missing, connections not allowed, role refused) has no request
trial at all: the upkeep loop checks it with one connection attempt (upkeep.check_definitive)
and requests keep failing fast until that check succeeds.
"""

from __future__ import annotations

import itertools
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
# A safety net only: a trial that is never settled (a bug) frees the slot after this.
TRIAL_TIMEOUT = 30.0
# Connect timeouts of this many distinct tenants in a row count against their server.
SLOW_TENANTS = THRESHOLD


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Breaker:
    """A consecutive-failure circuit breaker with exponential cool-down."""

    _tokens = itertools.count(1)

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
        self._trial: int | None = None
        self._trial_started = 0.0
        self.definitive = False  # opened by a definitive fault: only upkeep checks it
        self.last_error: str | None = None
        self.last_failure_at = 0.0

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose cool-down has passed reads as half-open)."""
        if self._state is BreakerState.OPEN and self._clock() >= self.opened_at + self.cooldown:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def cooled(self) -> bool:
        """Whether the cool-down has passed (a definitive breaker is then due for its check)."""
        return self._state is not BreakerState.CLOSED and self.state is BreakerState.HALF_OPEN

    def _trial_busy(self) -> bool:
        return (self._trial is not None
                and self._clock() - self._trial_started < TRIAL_TIMEOUT)

    def allow(self) -> bool:
        """Whether a request may go ahead now (nothing is taken: see `take_trial`)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN or self.definitive:
            return False
        return not self._trial_busy()

    def take_trial(self) -> int | None:
        """Take the half-open trial (None when closed: no trial needed); settle it with
        `record_success`, `record_failure` or `release_trial(token)`."""
        if self.state is BreakerState.CLOSED:
            return None
        if not self.allow():
            raise RuntimeError("take_trial without allow()")
        self._state = BreakerState.HALF_OPEN
        self._trial = next(self._tokens)
        self._trial_started = self._clock()
        return self._trial

    def release_trial(self, token: int | None) -> None:
        """Give back a trial that ended without saying anything about the database."""
        if token is not None and self._trial == token:
            self._trial = None

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
        self._trial = None
        self.definitive = False
        return was is not BreakerState.CLOSED

    def record_failure(self, error: str | None = None) -> bool:
        """Note a failure; returns True if this opened the breaker."""
        self.last_error = error
        self.failures += 1
        self.last_failure_at = self._clock()
        if self._state is BreakerState.HALF_OPEN or (self.definitive and self.cooled):
            self._open(self.cooldown * 2)
            return True
        if self._state is BreakerState.CLOSED and self.failures >= self.threshold:
            self._open(self.base_cooldown)
            return True
        return False

    def trip(self, error: str | None = None) -> bool:
        """Open at once for a definitive fault (upkeep checks it before any request may
        connect again); returns True if it was not open already."""
        self.last_error = error
        self.failures += 1
        self.last_failure_at = self._clock()
        self.definitive = True
        if self._state is BreakerState.OPEN and not self.cooled:
            self.opened_at = self._clock()
            return False
        opened = self._state is not BreakerState.OPEN
        self._open(self.cooldown if self._state is BreakerState.CLOSED else self.cooldown * 2)
        return opened

    def _open(self, cooldown: float) -> None:
        self._state = BreakerState.OPEN
        self.cooldown = min(max(cooldown, self.base_cooldown), self.max_cooldown)
        self.opened_at = self._clock()
        self._trial = None

    def snapshot(self) -> dict[str, object]:
        """State, failures, cool-down and last error (operator endpoint)."""
        return {
            "state": self.state.value, "consecutive_failures": self.failures,
            "cooldown_s": self.cooldown,
            "retry_after_s": self.retry_after() if self.state is not BreakerState.CLOSED else 0,
            "last_error": self.last_error, "awaiting_health_check": self.definitive,
        }


Trials = tuple[tuple[Breaker, int], ...]


class BreakerBoard:
    """The breakers of every tenant (kept only while not plainly closed) and every server."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.tenants: dict[uuid.UUID, Breaker] = {}
        self.servers: dict[int, Breaker] = {}
        self._slow: dict[int, set[uuid.UUID]] = {}  # server → tenants whose connect timed out

    def check(self, tenant_id: uuid.UUID, server_id: int) -> None:
        """Raise TenantUnavailable unless both breakers would let an attempt through now
        (nothing is taken: a start takes the half-open trials with `take_trials`)."""
        tb, sb = self.tenants.get(tenant_id), self.servers.get(server_id)
        for breaker, what in ((sb, "database server"), (tb, "database")):
            if breaker is not None and not breaker.allow():
                raise TenantUnavailable(
                    f"the church's {what} is failing; retrying shortly",
                    headers={"Retry-After": str(breaker.retry_after())},
                )

    def take_trials(self, tenant_id: uuid.UUID, server_id: int) -> Trials:
        """Take the half-open trials a pool start needs (call right after `check`, with no
        await between, and only once the start is certain to connect)."""
        taken: list[tuple[Breaker, int]] = []
        for breaker in (self.servers.get(server_id), self.tenants.get(tenant_id)):
            token = breaker.take_trial() if breaker is not None else None
            if breaker is not None and token is not None:
                taken.append((breaker, token))
        return tuple(taken)

    @staticmethod
    def release_trials(trials: Trials) -> None:
        """Give back the trials a start did not settle (no-op for those it settled)."""
        for breaker, token in trials:
            breaker.release_trial(token)

    def record_success(self, tenant_id: uuid.UUID, server_id: int) -> None:
        """Close the tenant's and the server's breakers after a working connection."""
        tb = self.tenants.pop(tenant_id, None)
        if tb is not None and tb.record_success():
            log.info("tenant_breaker_closed", tenant_id=str(tenant_id))
        self._slow.pop(server_id, None)
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
        if self._counts_for_server(tenant_id, server_id, fault):
            sb = self.servers.get(server_id)
            if sb is None:
                sb = self.servers[server_id] = Breaker(self._clock)
            s_opened = sb.record_failure(detail)
        if t_opened:
            log.warning("tenant_breaker_opened", tenant_id=str(tenant_id), fault=fault.value,
                        error=detail, cooldown_s=tb.cooldown)
        if s_opened:
            self._slow.pop(server_id, None)
            log.warning("server_breaker_opened", server_id=server_id, error=detail)
        return t_opened, s_opened

    def _counts_for_server(self, tenant_id: uuid.UUID, server_id: int, fault: Fault) -> bool:
        """Server faults count; a connect timeout counts only when it is the first of its
        tenant since the server last worked (one slow or overloaded tenant database must not
        close every pool of its server)."""
        if fault is Fault.SERVER:
            return True
        if fault is not Fault.SLOW:
            return False
        seen = self._slow.setdefault(server_id, set())
        if tenant_id in seen:
            return False
        seen.add(tenant_id)
        return True

    def due_checks(self) -> list[uuid.UUID]:
        """Tenants whose definitive breaker has cooled down: upkeep checks them."""
        return [t for t, b in self.tenants.items() if b.definitive and b.cooled]

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
