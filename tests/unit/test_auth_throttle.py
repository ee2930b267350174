"""The throttle's decision (free tries, doubling delay, lock, quiet window) and its keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ywmessaging.auth.errors import LoginLocked, LoginThrottled
from ywmessaging.auth.throttle import (
    EMAIL_RULE,
    INVITE_ACCEPT_LIMIT,
    RESET_CONFIRM_LIMIT,
    RESET_REQUEST_LIMIT,
    SIGNUP_LIMIT,
    Rule,
    Verdict,
    client_net,
    email_key,
    ip_key,
    limit_key,
    verdict,
)

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


def test_a_lock_ending_now_is_over() -> None:
    assert _v(2, 60, locked_for_s=0) is None


def test_a_delay_ending_now_is_over() -> None:
    assert _v(5, 1.0) is None                     # the first delay is 1 s: exactly spent
    v = _v(5, 0.999)
    assert v is not None and v.locked is False


def test_failures_are_forgotten_only_after_the_whole_window() -> None:
    slow = Rule(free=1, lock_after=50, lock_s=900, base_delay_s=4000, max_delay_s=4000,
                window_s=3600)
    at_window = verdict(slow, failures=1, last_failure_at=NOW - timedelta(seconds=3600),
                        locked_until=None, now=NOW)
    assert at_window is not None and at_window.retry_after_s == 400
    after = verdict(slow, failures=1, last_failure_at=NOW - timedelta(seconds=3600.5),
                    locked_until=None, now=NOW)
    assert after is None


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    assert Verdict(False, 0.2).error().headers["Retry-After"] == "1"
    assert Verdict(False, 1.01).error().headers["Retry-After"] == "2"
    assert Verdict(True, 899.5).error().headers["Retry-After"] == "900"


@pytest.mark.parametrize(("address", "net"), [
    (None, "unknown"),
    ("", "unknown"),
    ("203.0.113.9", "203.0.113.9"),
    ("2001:db8::1", "2001:db8::/64"),
    ("2001:db8:0:0:1:2:3:4", "2001:db8::/64"),      # the same /64: the same subscriber
    ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.1", "192.0.2.1"),              # IPv4-mapped: counted as the IPv4 address
    ("not-an-ip", "not-an-ip"),
    ("x" * 100, "x" * 64),
])
def test_what_a_client_address_counts_as(address: str | None, net: str) -> None:
    assert client_net(address) == net
    assert ip_key(address) == f"ip:{net}"
    assert limit_key(SIGNUP_LIMIT, address) == f"signup-ip:{net}"


def test_keys_of_each_kind_never_collide() -> None:
    assert email_key("pat@grace.test") == "email:pat@grace.test"
    kinds = {limit.kind for limit in (SIGNUP_LIMIT, RESET_REQUEST_LIMIT, RESET_CONFIRM_LIMIT,
                                      INVITE_ACCEPT_LIMIT)}
    assert len(kinds) == 4


def test_each_key_is_judged_by_its_own_rule_and_every_key_counts() -> None:
    from ywmessaging.auth.throttle import Throttle
    from ywmessaging.config import Settings

    throttle = Throttle(Settings())
    # Six failures refuse an email (five free) but not an address (thirty free).
    assert throttle._judge([_row("ip:192.0.2.1", 6, 0)]) is None
    assert throttle._judge([_row("email:a@x.org", 6, 0)]) is not None
    # A key that lets the attempt through does not stop the others from refusing it.
    refused = throttle._judge([_row("email:a@x.org", 0, 0), _row("ip:192.0.2.1", 40, 1)])
    assert refused is not None and refused.may_wait   # one attempt in flight is enough
