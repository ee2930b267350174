"""Scheduling math across DST changes (America/New_York spring and fall, Europe/London)."""

from __future__ import annotations

import time as systime
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

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


def test_rule_bounds_sunday_and_the_first_of_the_month_are_valid() -> None:
    Rule("weekly", time(9), NY, days_of_week=(0, 6))
    Rule("monthly", time(9), NY, day_of_month=1)
    Rule("monthly", time(9), NY, day_of_month=31)
    for days in ((7,), (-1,), (0, 7)):
        with pytest.raises(ValueError, match="days_of_week"):
            Rule("weekly", time(9), NY, days_of_week=days)
    with pytest.raises(ValueError, match="day_of_month"):
        Rule("monthly", time(9), NY, day_of_month=0)
    with pytest.raises(ValueError, match="day_of_month"):
        Rule("monthly", time(9), NY)


def test_refusals_say_what_is_wrong() -> None:
    # The text becomes the 422's detail (messaging/recurring.py): it must name the problem.
    with pytest.raises(ValueError, match="frequency"):
        Rule("hourly", time(9), NY)
    with pytest.raises(ValueError, match="Mars/Olympus"):
        zone("Mars/Olympus")
    with pytest.raises(ValueError, match="missed_policy"):
        plan_run(Rule("daily", time(9), NY), utc(2027, 1, 1), utc(2027, 1, 2),
                 grace=timedelta(0), missed_policy="later")


def test_monthly_on_the_first() -> None:
    rule = Rule("monthly", time(0, 30), NY, day_of_month=1)
    at, seen = utc(2026, 12, 15), []
    for _ in range(3):
        at = next_occurrence(rule, at)
        seen.append(at)
    assert seen == [utc(2027, 1, 1, 5, 30), utc(2027, 2, 1, 5, 30), utc(2027, 3, 1, 5, 30)]
    assert previous_occurrence(rule, utc(2027, 2, 15)) == utc(2027, 2, 1, 5, 30)
    assert previous_occurrence(rule, utc(2027, 2, 1, 5, 30)) == utc(2027, 2, 1, 5, 30)


def test_previous_occurrence_of_weekly_and_monthly_rules() -> None:
    weekly = Rule("weekly", time(18), NY, days_of_week=(6,))     # Sundays 18:00
    assert previous_occurrence(weekly, utc(2026, 11, 27)) == utc(2026, 11, 22, 23)
    monthly = Rule("monthly", time(8), NY, day_of_month=31)
    assert previous_occurrence(monthly, utc(2027, 3, 15)) == utc(2027, 2, 28, 13)


def test_weekly_catch_up_sends_the_latest_and_counts_the_rest() -> None:
    rule = Rule("weekly", time(18), NY, days_of_week=(2, 6))     # Wednesdays and Sundays
    due = utc(2026, 11, 4, 23)                                   # Wednesday 4 Nov, 18:00 EST
    now = utc(2026, 11, 23, 1)                                   # Sunday 22 Nov, 20:00 EST
    plan = plan_run(rule, due, now, grace=timedelta(minutes=15), missed_policy="send_late")
    # 4, 8, 11, 15, 18 Nov are dropped; 22 Nov (two hours late) is sent.
    assert (plan.send_at, plan.skipped, plan.late) == (utc(2026, 11, 22, 23), 5, True)
    assert plan.next_run_at == utc(2026, 11, 25, 23)
    skip = plan_run(rule, due, now, grace=timedelta(minutes=15), missed_policy="skip")
    assert (skip.send_at, skip.skipped, skip.next_run_at) == (None, 6, plan.next_run_at)


def test_monthly_catch_up_across_a_short_month() -> None:
    rule = Rule("monthly", time(9), NY, day_of_month=31)
    due = utc(2027, 1, 31, 14)
    now = utc(2027, 3, 31, 13, 10)                               # 09:10 EDT: on time
    plan = plan_run(rule, due, now, grace=timedelta(minutes=15), missed_policy="skip")
    assert (plan.send_at, plan.skipped, plan.late) == (utc(2027, 3, 31, 13), 2, False)
    assert plan.next_run_at == utc(2027, 4, 30, 13)


def test_a_due_time_off_the_rules_grid_is_itself_the_occurrence() -> None:
    # next_run_at from before an edit of the rule (10:00) while the rule now says 09:00.
    rule = Rule("daily", time(9), NY)
    due = utc(2027, 3, 15, 14)                                   # 10:00 EDT
    plan = plan_run(rule, due, due + timedelta(minutes=5), grace=timedelta(minutes=15),
                    missed_policy="skip")
    assert (plan.send_at, plan.skipped, plan.late) == (due, 0, False)
    assert plan.next_run_at == utc(2027, 3, 16, 13)


def test_exactly_the_grace_period_is_still_on_time() -> None:
    rule = Rule("daily", time(9), NY)
    due = utc(2027, 3, 15, 13)
    grace = timedelta(minutes=15)
    on_time = plan_run(rule, due, due + grace, grace=grace, missed_policy="skip")
    assert (on_time.send_at, on_time.late) == (due, False)
    late = plan_run(rule, due, due + grace + timedelta(seconds=1), grace=grace,
                    missed_policy="skip")
    assert (late.send_at, late.late, late.skipped) == (None, True, 1)


def test_counting_missed_occurrences_is_bounded() -> None:
    rule = Rule("daily", time(9), NY)
    now = utc(2027, 3, 13, 15)
    plan = plan_run(rule, utc(1990, 1, 1, 14), now, grace=timedelta(minutes=15),
                    missed_policy="send_late")
    assert (plan.send_at, plan.skipped) == (utc(2027, 3, 13, 14), 10_000)


def test_a_whole_missing_day_resolves_to_the_next_that_exists() -> None:
    # Samoa skipped 30 December 2011: 29 Dec 23:59:59 (UTC-10) was followed by 31 Dec 00:00
    # (UTC+14). Its midnight is the far end of the longest gap a zone has had.
    apia = zone("Pacific/Apia")
    first_instant = utc(2011, 12, 30, 10)
    assert resolve_local(date(2011, 12, 30), time(0, 0), apia) == first_instant
    assert resolve_local(date(2011, 12, 30), time(23, 59), apia) == first_instant


def test_a_time_in_the_gap_moves_to_the_whole_minute_at_its_end() -> None:
    at = resolve_local(date(2027, 3, 14), time(2, 30, 45, 500), zone(NY))
    assert at == utc(2027, 3, 14, 7)                             # 03:00:00.000 EDT


def test_an_ambiguous_time_given_as_the_second_one_is_still_the_first() -> None:
    at = resolve_local(date(2026, 11, 1), time(1, 30, fold=1), zone(NY))
    assert at == utc(2026, 11, 1, 5, 30)                         # 01:30 EDT


@pytest.fixture(params=["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def machine_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The process's local zone set to one of the two farthest apart (UTC+14, UTC-11)."""
    monkeypatch.setenv("TZ", request.param)
    systime.tzset()
    yield request.param
    monkeypatch.undo()
    systime.tzset()


def test_the_machines_own_time_zone_changes_nothing(machine_zone: str) -> None:
    late = Rule("daily", time(23, 30), "Pacific/Pago_Pago")
    after = utc(2027, 6, 2, 10)                                  # 1 Jun 23:00 in Pago Pago
    at = next_occurrence(late, after)
    assert at == utc(2027, 6, 2, 10, 30) and at.utcoffset() == timedelta(0)
    early = Rule("daily", time(0, 15), "Pacific/Kiritimati")
    before = utc(2027, 6, 1, 10, 30)                             # 2 Jun 00:30 in Kiritimati
    assert previous_occurrence(early, before) == utc(2027, 6, 1, 10, 15)
    assert resolve_local(date(2027, 6, 1), time(12), zone(NY)).utcoffset() == timedelta(0)
    repeated = quiet_until(utc(2026, 11, 1, 6, 15), time(21), time(1, 30), NY)  # see below
    assert repeated == utc(2026, 11, 1, 6, 30) and repeated.utcoffset() == timedelta(0)


def test_quiet_hours_need_both_ends_and_a_real_window() -> None:
    now = utc(2026, 11, 28, 3)                                   # 22:00 EST
    assert quiet_until(now, time(21), None, NY) is None
    assert quiet_until(now, None, time(8), NY) is None
    assert quiet_until(now, time(21), time(21), NY) is None


@pytest.mark.parametrize(("local", "until"), [
    (time(11, 59), None),
    (time(12, 0), utc(2026, 11, 28, 18)),
    (time(12, 59), utc(2026, 11, 28, 18)),
    (time(13, 0), None),                                         # the end is not quiet
    (time(17, 0), None),                                         # nor the rest of the day
    (time(0, 30), None),
    (time(23, 0), None),
])
def test_same_day_quiet_window(local: time, until: datetime | None) -> None:
    now = datetime.combine(date(2026, 11, 28), local, tzinfo=zone(NY))
    assert quiet_until(now, time(12), time(13), NY) == until


@pytest.mark.parametrize(("day", "local", "until"), [
    (27, time(20, 59), None),
    (27, time(21, 0), utc(2026, 11, 28, 13)),                    # the start is quiet
    (27, time(23, 59), utc(2026, 11, 28, 13)),
    (28, time(0, 0), utc(2026, 11, 28, 13)),
    (28, time(7, 59), utc(2026, 11, 28, 13)),
    (28, time(8, 0), None),                                      # the end is not
    (28, time(12, 0), None),
])
def test_overnight_quiet_window(day: int, local: time, until: datetime | None) -> None:
    now = datetime.combine(date(2026, 11, day), local, tzinfo=zone(NY))
    assert quiet_until(now, time(21), time(8), NY) == until


def test_quiet_hours_ending_in_the_repeated_hour_end_after_now() -> None:
    # 1 Nov 2026 in New York: 01:00-02:00 happens twice. A window ending at 01:30 ends at
    # 01:30 EDT; when the clock reads 01:15 again (EST) the window is quiet until 01:30 EST,
    # never an instant already past.
    window = (time(21), time(1, 30))
    assert quiet_until(utc(2026, 11, 1, 5, 15), *window, NY) == utc(2026, 11, 1, 5, 30)
    assert quiet_until(utc(2026, 11, 1, 5, 45), *window, NY) is None
    assert quiet_until(utc(2026, 11, 1, 6, 15), *window, NY) == utc(2026, 11, 1, 6, 30)
    assert quiet_until(utc(2026, 11, 1, 6, 45), *window, NY) is None
