"""Circuit breakers without a supervisor: the half-open trial, Retry-After, resets, the slow-
tenant rule, pruning, the operator snapshot, the metrics counts and the log events.

(The supervisor's use of them, with a fake pool factory, is in test_supervisor_breakers.py.)
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from ywmessaging.errors import TenantUnavailable
from ywmessaging.tenants.breaker import TRIAL_TIMEOUT, Breaker, BreakerBoard, BreakerState
from ywmessaging.tenants.health import Fault

A, B, C, D = (uuid.UUID(int=n) for n in range(1, 5))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state_of(breaker: Breaker) -> BreakerState:
    """The breaker's state, read afresh (keeps mypy from narrowing the property)."""
    return breaker.state


def opened(clock: Clock, n: int = 3) -> Breaker:
    br = Breaker(clock)
    for _ in range(n):
        br.record_failure("refused")
    return br


def refusal(board: BreakerBoard, tenant: uuid.UUID, server: int = 1) -> TenantUnavailable:
    with pytest.raises(TenantUnavailable) as info:
        board.check(tenant, server)
    assert (info.value.status, info.value.code) == (503, "tenant_unavailable")
    return info.value


# -- one breaker ---------------------------------------------------------------------------


def test_a_success_starts_the_failure_count_again() -> None:
    br = Breaker(Clock())
    br.record_failure("a")
    br.record_failure("b")
    assert br.record_success() is False            # it was closed: nothing to announce
    br.record_failure("c")
    br.record_failure("d")
    assert state_of(br) is BreakerState.CLOSED and br.failures == 2
    assert br.record_failure("e") is True


def test_retry_after_counts_down_the_cool_down_in_whole_seconds() -> None:
    clock = Clock()
    br = opened(clock)
    br.cooldown = 8.0                               # as after three failed trials
    assert br.retry_after() == 8
    clock.now += 2.5
    assert br.retry_after() == 6                    # 5.5 s left, rounded up
    clock.now += 5.4
    assert br.retry_after() == 1                    # 0.1 s left: never "0"
    clock.now += 0.1
    assert br.retry_after() == 1                    # half-open: try again in a second
    br.take_trial()
    assert br.retry_after() == 1
    assert Breaker(clock).retry_after() == 1        # closed


def test_a_trial_never_settled_frees_itself_after_the_timeout() -> None:
    clock = Clock()
    br = opened(clock)
    clock.now += br.cooldown
    assert br.take_trial() is not None
    clock.now += TRIAL_TIMEOUT - 0.5
    assert not br.allow()
    clock.now += 0.5
    assert br.allow()                               # exactly the timeout: free again


def test_taking_a_trial_that_is_not_allowed_is_a_bug() -> None:
    clock = Clock()
    br = opened(clock)
    with pytest.raises(RuntimeError, match="allow"):
        br.take_trial()
    clock.now += br.cooldown
    br.take_trial()
    with pytest.raises(RuntimeError, match="allow"):
        br.take_trial()


def test_a_failure_without_the_trial_does_not_reopen_a_cooled_breaker() -> None:
    clock = Clock()
    br = opened(clock)
    clock.now += br.cooldown                        # half-open, nobody has the trial yet
    assert br.record_failure("late probe") is False
    assert br.cooldown == 1.0 and state_of(br) is BreakerState.HALF_OPEN and br.allow()


def test_a_failure_before_a_definitive_breaker_cools_changes_nothing() -> None:
    clock = Clock()
    br = Breaker(clock)
    br.trip("database does not exist")
    assert br.record_failure("again") is False
    assert br.cooldown == 1.0 and br.failures == 2
    clock.now += 1.0
    assert br.record_failure("upkeep check failed") is True   # cooled: reopen, doubled
    assert br.cooldown == 2.0


def test_trip_opens_at_the_base_cool_down_then_doubles_per_cooled_retrip() -> None:
    clock = Clock()
    br = Breaker(clock)
    assert br.trip("gone") is True and br.cooldown == 1.0 and br.failures == 1
    assert br.last_failure_at == clock.now
    clock.now += 0.5
    assert br.trip("still gone") is False           # already open: the cool-down restarts
    assert br.failures == 2 and br.cooldown == 1.0 and br.last_error == "still gone"
    clock.now += 0.9
    assert state_of(br) is BreakerState.OPEN       # 1.4 s after the first trip, 0.9 after
    clock.now += 0.1
    assert br.cooled
    assert br.trip("gone for good") is False and br.cooldown == 2.0 and br.failures == 3


def test_trip_of_a_tenant_whose_breaker_was_counting_failures() -> None:
    clock = Clock()
    br = Breaker(clock)
    br.record_failure("slow")
    clock.now += 5
    assert br.trip("dropped") is True
    assert (br.cooldown, br.failures, br.last_failure_at) == (1.0, 2, clock.now)


def test_snapshot_for_operators() -> None:
    clock = Clock()
    br = Breaker(clock)
    assert br.snapshot() == {
        "state": "closed", "consecutive_failures": 0, "cooldown_s": 1.0, "retry_after_s": 0,
        "last_error": None, "awaiting_health_check": False,
    }
    br.trip("database missing")
    clock.now += 0.25
    assert br.snapshot() == {
        "state": "open", "consecutive_failures": 1, "cooldown_s": 1.0, "retry_after_s": 1,
        "last_error": "database missing", "awaiting_health_check": True,
    }
    clock.now += 1.0
    assert br.snapshot()["state"] == "half_open" and br.snapshot()["retry_after_s"] == 1
    br.record_success()
    assert br.snapshot() == {
        "state": "closed", "consecutive_failures": 0, "cooldown_s": 1.0, "retry_after_s": 0,
        "last_error": "database missing", "awaiting_health_check": False,
    }


def test_a_success_after_long_trouble_restores_the_base_cool_down() -> None:
    clock = Clock()
    br = opened(clock)
    for _ in range(3):                              # three failed trials: 2, 4, 8 s
        clock.now += br.cooldown
        br.take_trial()
        br.record_failure("x")
    assert br.cooldown == 8.0
    br.record_success()
    for _ in range(3):
        br.record_failure("x")
    assert br.cooldown == 1.0 and br.retry_after() == 1


# -- the board -----------------------------------------------------------------------------


def test_the_half_open_trial_goes_to_one_start_only() -> None:
    clock = Clock()
    board = BreakerBoard(clock)
    for _ in range(3):
        board.record_failure(A, 1, Fault.TENANT, "reset by peer")
    refusal(board, A)
    clock.now += 1.0
    board.check(A, 1)                               # half-open: one start may try
    trials = board.take_trials(A, 1)
    assert [b for b, _ in trials] == [board.tenants[A]]
    refusal(board, A)                               # the trial is taken: others fail fast
    board.check(B, 1)                               # another tenant of the server is fine
    assert board.take_trials(B, 1) == ()
    board.release_trials(trials)                    # that start learned nothing
    board.check(A, 1)
    board.take_trials(A, 1)
    board.record_success(A, 1)
    assert A not in board.tenants
    board.check(A, 1)


def test_trials_of_both_breakers_are_taken_and_settled() -> None:
    clock = Clock()
    board = BreakerBoard(clock)
    for _ in range(3):
        board.record_failure(A, 7, Fault.TENANT, "reset by peer")
    for tenant in (B, C, D):
        board.record_failure(tenant, 7, Fault.SERVER, "connection refused")
    assert state_of(board.servers[7]) is BreakerState.OPEN
    clock.now += 1.0
    board.check(A, 7)
    trials = board.take_trials(A, 7)
    assert [b for b, _ in trials] == [board.servers[7], board.tenants[A]]
    refusal(board, B, 7)                            # the server's trial is A's
    board.record_failure(A, 7, Fault.SERVER, "still refused")
    board.release_trials(trials)                    # settled already: nothing to give back
    for breaker in (board.servers[7], board.tenants[A]):
        assert state_of(breaker) is BreakerState.OPEN and breaker.cooldown == 2.0


def test_a_closed_breaker_with_failures_gives_no_trial() -> None:
    board = BreakerBoard(Clock())
    board.record_failure(A, 1, Fault.SERVER, "refused")    # both breakers count one
    assert board.take_trials(A, 1) == ()


def test_refusal_names_which_breaker_and_says_when_to_retry() -> None:
    clock = Clock()
    board = BreakerBoard(clock)
    for tenant in (A, B, C):
        board.record_failure(tenant, 1, Fault.SERVER, "refused")
    board.servers[1].cooldown = 5.0
    clock.now += 1.5
    server = refusal(board, D)
    assert server.headers == {"Retry-After": "4"}
    assert server.detail is not None and "database server" in server.detail
    board.record_failure(D, 2, Fault.DEFINITIVE, "database does not exist")
    tenant = refusal(board, D, 2)
    assert tenant.headers == {"Retry-After": "1"}
    assert tenant.detail is not None and "database" in tenant.detail
    assert "server" not in tenant.detail


def test_a_working_connection_resets_the_servers_count() -> None:
    board = BreakerBoard(Clock())
    board.record_failure(A, 1, Fault.SERVER, "refused")
    board.record_failure(B, 1, Fault.SERVER, "refused")
    board.record_success(C, 1)
    assert board.servers[1].failures == 0
    board.record_failure(A, 1, Fault.SERVER, "refused")
    board.record_failure(B, 1, Fault.SERVER, "refused")
    assert state_of(board.servers[1]) is BreakerState.CLOSED


def test_connect_timeouts_count_once_per_tenant_per_server_until_it_works() -> None:
    board = BreakerBoard(Clock())
    board.record_failure(A, 1, Fault.SLOW, "timeout")
    board.record_failure(A, 1, Fault.SLOW, "timeout")
    assert board.servers[1].failures == 1           # the same tenant again: not the server's
    board.record_failure(A, 2, Fault.SLOW, "timeout")
    assert board.servers[2].failures == 1           # another server keeps its own tally
    board.record_success(B, 1)
    board.record_failure(A, 1, Fault.SLOW, "timeout")
    assert board.servers[1].failures == 1           # the server worked: A counts again
    board.record_failure(A, 1, Fault.TENANT, "reset")
    assert board.servers[1].failures == 1           # a tenant's own fault is not the server's


def test_server_opened_by_timeouts_starts_a_fresh_tally() -> None:
    board = BreakerBoard(Clock())
    results = [board.record_failure(t, 1, Fault.SLOW, "timeout") for t in (A, B, C)]
    assert [s for _, s in results] == [False, False, True]
    assert board.record_failure(A, 1, Fault.SLOW, "timeout") == (False, False)
    assert board.servers[1].failures == 4           # A's timeout counted again after opening


def test_due_checks_are_the_cooled_definitive_breakers() -> None:
    clock = Clock()
    board = BreakerBoard(clock)
    board.record_failure(A, 1, Fault.DEFINITIVE, "database does not exist")
    for _ in range(3):
        board.record_failure(B, 1, Fault.TENANT, "reset")
    clock.now += 1.0
    board.record_failure(C, 1, Fault.DEFINITIVE, "role refused")
    assert board.due_checks() == [A]


def test_prune_forgets_only_closed_breakers_quiet_for_a_minute() -> None:
    clock = Clock()
    start = clock.now
    board = BreakerBoard(clock)
    board.record_failure(A, 1, Fault.TENANT, "reset")        # closed, one failure
    for _ in range(3):
        board.record_failure(B, 1, Fault.TENANT, "reset")    # open
    clock.now = start + 29.5
    board.record_failure(C, 1, Fault.TENANT, "reset")
    clock.now = start + 30.0
    board.record_failure(D, 1, Fault.TENANT, "reset")
    clock.now = start + 90.0
    board.prune()
    assert set(board.tenants) == {B, D}   # A: 90 s ago, C: 60.5 s ago; D: exactly 60 s ago
    board.prune(older_than=10.0)
    assert set(board.tenants) == {B}      # B is half-open now: kept until it closes
    board.servers.clear()
    board.prune()                         # nothing closed left: nothing to do


def test_counts_by_scope_and_state() -> None:
    clock = Clock()
    board = BreakerBoard(clock)
    zero = {(scope, state.value): 0 for scope in ("tenant", "server") for state in BreakerState}
    assert board.counts() == zero
    board.record_failure(A, 1, Fault.SERVER, "refused")     # A and server 1: one failure
    board.record_failure(B, 1, Fault.DEFINITIVE, "gone")
    board.record_failure(C, 1, Fault.DEFINITIVE, "gone")
    for tenant in (B, C, D):
        board.record_failure(tenant, 2, Fault.SERVER, "refused")
    assert board.counts() == zero | {
        ("tenant", "closed"): 2, ("tenant", "open"): 2,
        ("server", "closed"): 1, ("server", "open"): 1,
    }


@pytest.fixture
def every_level() -> Iterator[None]:
    """Let info events through whatever level an earlier test configured structlog with."""
    before = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    yield
    structlog.configure(**before)


@pytest.mark.usefixtures("every_level")
def test_opening_and_closing_are_logged_as_events() -> None:
    board = BreakerBoard(Clock())
    with capture_logs() as logs:
        board.record_failure(A, 1, Fault.DEFINITIVE, "database does not exist")
        for tenant in (A, B, C):
            board.record_failure(tenant, 3, Fault.SERVER, "refused")
        board.record_success(A, 3)
        board.record_success(A, 3)                 # nothing left to close: no event
    assert logs == [
        {"event": "tenant_breaker_opened", "log_level": "warning", "tenant_id": str(A),
         "fault": "definitive", "error": "database does not exist", "cooldown_s": 1.0},
        {"event": "server_breaker_opened", "log_level": "warning", "server_id": 3,
         "error": "refused"},
        {"event": "tenant_breaker_closed", "log_level": "info", "tenant_id": str(A)},
        {"event": "server_breaker_closed", "log_level": "info", "server_id": 3},
    ]


def test_failures_keep_their_error_for_the_operator() -> None:
    board = BreakerBoard(Clock())
    board.record_failure(A, 1, Fault.DEFINITIVE, "database does not exist")
    board.record_failure(B, 1, Fault.SERVER, "connection refused")
    assert board.tenants[A].last_error == "database does not exist"
    assert board.tenants[B].last_error == "connection refused"
    assert board.servers[1].last_error == "connection refused"
    assert board.record_failure(C, 1, Fault.NONE, "syntax error") == (False, False)
    assert C not in board.tenants


def test_record_failure_says_which_breaker_opened() -> None:
    board = BreakerBoard(Clock())
    t_opened, s_opened = board.record_failure(A, 1, Fault.TENANT, "reset")
    assert t_opened is False and s_opened is False     # not the server's fault at all
    assert board.record_failure(A, 1, Fault.DEFINITIVE, "gone") == (True, False)
    assert board.record_failure(B, 1, Fault.SERVER, "refused") == (False, False)
