"""The throttle's decision: free tries, doubling delay, lock, quiet window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ywmessaging.auth.errors import LoginLocked, LoginThrottled
from ywmessaging.auth.throttle import EMAIL_RULE, Rule, Verdict, verdict

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
RULE = Rule(free=5, lock_after=8, lock_s=900)


def _v(failures: int, ago_s: float, locked_for_s: float | None = None) -> Verdict | None:
    locked = NOW + timedelta(seconds=locked_for_s) if locked_for_s is not None else None
    return verdict(RULE, failures=failures, last_failure_at=NOW - timedelta(seconds=ago_s),
                   locked_until=locked, now=NOW)


def test_free_failures_need_no_wait() -> None:
    assert all(_v(n, 0) is None for n in range(5))


def test_delay_doubles_after_the_free_failures() -> None:
    waits = []
    for failures in (5, 6, 7):
        v = _v(failures, 0.25)
        assert v is not None
        assert not v.locked
        waits.append(round(v.retry_after_s + 0.25, 3))
    assert waits == [1.0, 2.0, 4.0]
    assert _v(5, 1.5) is None  # the delay has passed


def test_delay_is_capped() -> None:
    v = _v(20, 0)
    assert v is not None and v.retry_after_s == RULE.max_delay_s


def test_lock_and_its_expiry() -> None:
    v = _v(8, 0, locked_for_s=600)
    assert v is not None and v.locked and v.retry_after_s == 600
    err = v.error()
    assert isinstance(err, LoginLocked) and err.headers["Retry-After"] == "600"
    assert err.status == 429 and err.code == "login_locked"
    # Lock over: the next try is let through (one more failure re-locks: see the SQL).
    assert _v(8, 1800, locked_for_s=-1) is None


def test_quiet_window_forgets() -> None:
    assert _v(7, RULE.window_s + 1) is None


def test_throttled_error() -> None:
    v = _v(6, 0)
    assert v is not None
    err = v.error()
    assert isinstance(err, LoginThrottled) and err.headers["Retry-After"] == "2"


def test_email_rule_is_stricter_than_address_rule() -> None:
    from ywmessaging.auth.throttle import IP_RULE

    assert EMAIL_RULE.free < IP_RULE.free and EMAIL_RULE.lock_after < IP_RULE.lock_after


def _row(key: str, failures: int, in_flight: int, *, ago_s: float = 0.1,
         locked_for_s: float | None = None) -> dict[str, object]:
    return {"key": key, "failures": failures, "in_flight": in_flight, "now": NOW,
            "last_failure_at": NOW - timedelta(seconds=ago_s),
            "locked_until": None if locked_for_s is None
            else NOW + timedelta(seconds=locked_for_s)}


def test_a_refusal_waits_only_when_every_refusing_key_has_attempts_in_flight() -> None:
    from ywmessaging.auth.throttle import Throttle
    from ywmessaging.config import Settings

    throttle = Throttle(Settings())
    assert throttle._judge([_row("email:a@x.org", 4, 4), _row("ip:192.0.2.1", 4, 4)]) is None
    # Refused only while five attempts are in flight: they may be right passwords.
    busy = throttle._judge([_row("email:a@x.org", 5, 5), _row("ip:192.0.2.1", 5, 5)])
    assert busy is not None and busy.may_wait and not busy.verdict.locked
    # Decided failures alone refuse: nothing to wait for.
    decided = throttle._judge([_row("email:a@x.org", 5, 0)])
    assert decided is not None and not decided.may_wait
    # Two refusing keys, one with nothing in flight: waiting cannot help; the lock wins.
    both = throttle._judge([_row("email:a@x.org", 8, 1, locked_for_s=600),
                            _row("ip:192.0.2.1", 30, 0)])
    assert both is not None and not both.may_wait and both.verdict.locked
