"""Scheduling math across DST changes (America/New_York spring and fall, Europe/London)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ywmessaging.messaging.schedule import (
    Rule,
    month_start,
    next_occurrence,
    plan_run,
    previous_occurrence,
    quiet_until,
    resolve_local,
    zone,
)

NY = "America/New_York"
LONDON = "Europe/London"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_daily_9am_keeps_wall_clock_across_spring_forward() -> None:
    rule = Rule("daily", time(9, 0), NY)
    first = next_occurrence(rule, utc(2027, 3, 13, 15))
    second = next_occurrence(rule, first)
    assert first == utc(2027, 3, 14, 13)         # 09:00 EDT (UTC-4): the change day
    before = previous_occurrence(rule, first - timedelta(seconds=1))
    assert before == utc(2027, 3, 13, 14)        # 09:00 EST (UTC-5) the day before: 23 h gap
    assert first - before == timedelta(hours=23)
    assert second - first == timedelta(hours=24)


def test_nonexistent_time_moves_to_the_end_of_the_gap() -> None:
    rule = Rule("daily", time(2, 30), NY)
    at = next_occurrence(rule, utc(2027, 3, 14, 0))
    assert at == utc(2027, 3, 14, 7)             # 03:00 EDT, the first valid instant after 02:30
    assert at.astimezone(zone(NY)).time() == time(3, 0)
    assert next_occurrence(rule, at) == utc(2027, 3, 15, 6, 30)  # 02:30 EDT the next day


def test_ambiguous_time_is_the_first_occurrence_in_new_york_fall() -> None:
    rule = Rule("daily", time(1, 30), NY)
    at = next_occurrence(rule, utc(2026, 11, 1, 0))
    assert at == utc(2026, 11, 1, 5, 30)         # 01:30 EDT (UTC-4), not 01:30 EST
    follow = next_occurrence(rule, at)
    assert follow == utc(2026, 11, 2, 6, 30)     # exactly one occurrence that day


def test_london_spring_and_autumn() -> None:
    rule = Rule("daily", time(1, 30), LONDON)
    spring = next_occurrence(rule, utc(2027, 3, 28, 0))
    assert spring == utc(2027, 3, 28, 1)         # 01:30 does not exist → 02:00 BST = 01:00 UTC
    autumn = next_occurrence(rule, utc(2026, 10, 25, 0))
    assert autumn == utc(2026, 10, 25, 0, 30)    # 01:30 BST, the first of the two
    assert next_occurrence(rule, autumn) == utc(2026, 10, 26, 1, 30)


def test_weekly_days_monday_zero() -> None:
    rule = Rule("weekly", time(18, 0), NY, days_of_week=(0, 3))  # Monday, Thursday
    at = next_occurrence(rule, utc(2026, 11, 27, 0))  # Friday 27 Nov 2026
    local = at.astimezone(zone(NY))
    assert (local.weekday(), local.day, local.hour) == (0, 30, 18)
    nxt = next_occurrence(rule, at).astimezone(zone(NY))
    assert (nxt.weekday(), nxt.day) == (3, 3)


def test_monthly_31_uses_the_last_day_of_short_months() -> None:
    rule = Rule("monthly", time(8, 0), NY, day_of_month=31)
    seen = []
    at = utc(2027, 1, 1)
    for _ in range(4):
        at = next_occurrence(rule, at)
        seen.append(at.astimezone(zone(NY)).date().isoformat())
    assert seen == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"]
    leap = next_occurrence(rule, utc(2028, 2, 1))
    assert leap.astimezone(zone(NY)).day == 29


def test_invalid_rules_are_refused() -> None:
    with pytest.raises(ValueError):
        Rule("weekly", time(9), NY)
    with pytest.raises(ValueError):
        Rule("monthly", time(9), NY, day_of_month=32)
    with pytest.raises(ValueError):
        Rule("hourly", time(9), NY)
    with pytest.raises(ValueError):
        Rule("daily", time(9), "Mars/Olympus")


def test_plan_on_time_sends_the_due_occurrence() -> None:
    rule = Rule("daily", time(9), NY)
    due = utc(2027, 3, 14, 13)
    plan = plan_run(rule, due, due + timedelta(seconds=5), grace=timedelta(minutes=15),
                    missed_policy="skip")
    assert (plan.send_at, plan.skipped, plan.late) == (due, 0, False)
    assert plan.next_run_at == utc(2027, 3, 15, 13)


def test_plan_after_downtime_sends_late_once_or_skips() -> None:
    rule = Rule("daily", time(9), NY)
    due = utc(2027, 3, 10, 14)                   # three days missed, now is 10:00 on the 13th
    now = utc(2027, 3, 13, 15)
    late = plan_run(rule, due, now, grace=timedelta(minutes=15), missed_policy="send_late")
    assert late.send_at == utc(2027, 3, 13, 14) and late.skipped == 3 and late.late
    assert late.next_run_at == utc(2027, 3, 14, 13)
    skip = plan_run(rule, due, now, grace=timedelta(minutes=15), missed_policy="skip")
    assert skip.send_at is None and skip.skipped == 4
    assert skip.next_run_at == late.next_run_at


def test_quiet_hours_wrapping_midnight_end_in_local_time() -> None:
    start, end = time(21, 0), time(8, 0)
    evening = utc(2026, 11, 28, 3)               # 22:00 EST on the 27th
    assert quiet_until(evening, start, end, NY) == utc(2026, 11, 28, 13)  # 08:00 EST
    early = utc(2026, 11, 28, 12)                # 07:00 EST
    assert quiet_until(early, start, end, NY) == utc(2026, 11, 28, 13)
    assert quiet_until(utc(2026, 11, 28, 17), start, end, NY) is None
    assert quiet_until(evening, None, None, NY) is None
    day = quiet_until(utc(2026, 11, 28, 17), time(12), time(13), NY)
    assert day == utc(2026, 11, 28, 18)


def test_month_start_in_the_church_zone() -> None:
    assert month_start(utc(2026, 12, 1, 3), NY) == utc(2026, 11, 1, 4)  # still November in NY
    assert month_start(utc(2026, 12, 1, 6), NY) == utc(2026, 12, 1, 5)


@settings(max_examples=150, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2030, 1, 1),
                       timezones=st.just(UTC)),
    hour=st.integers(0, 23), minute=st.sampled_from([0, 15, 30, 45]),
    tz=st.sampled_from([NY, LONDON, "Australia/Lord_Howe", "UTC"]),
)
def test_daily_occurrences_are_strictly_increasing_and_one_per_local_day(
        start: datetime, hour: int, minute: int, tz: str) -> None:
    rule = Rule("daily", time(hour, minute), tz)
    at, days = start, []
    for _ in range(5):
        nxt = next_occurrence(rule, at)
        assert nxt > at
        assert previous_occurrence(rule, nxt) == nxt
        days.append(nxt.astimezone(zone(tz)).date())
        at = nxt
    assert len(set(days)) == len(days)


def test_resolve_local_round_trips_ordinary_times() -> None:
    tz = zone(NY)
    at = resolve_local(datetime(2026, 7, 4).date(), time(12, 0), tz)
    assert at.astimezone(tz).replace(tzinfo=None) == datetime(2026, 7, 4, 12, 0)
