"""Pure scheduling math: recurring occurrences, quiet hours and month starts, DST-correct.

Wall-clock rules are resolved in the rule's IANA time zone with zoneinfo:
- a local time that does not exist (spring forward, e.g. 02:30 on the change day in New York)
  becomes the next valid instant (03:00 local, the end of the gap);
- an ambiguous local time (fall back, e.g. 01:30 twice) is its first occurrence (fold=0).
Every loop here is bounded (a year of days at most).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FREQUENCIES = ("daily", "weekly", "monthly")
MISSED_POLICIES = ("send_late", "skip")
_SEARCH_DAYS = 400          # more than a year: every rule matches at least once in that window
_GAP_MINUTES = 24 * 60      # the longest gap a zone could have (real ones are 30–120 minutes)


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` (ValueError if unknown)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


@dataclass(frozen=True)
class Rule:
    """A recurring rule: `frequency` at `local_time` in `time_zone`.

    weekly: `days_of_week` (0 = Monday .. 6 = Sunday); monthly: `day_of_month` (1..31; months
    without that day use their last day).
    """

    frequency: str
    local_time: time
    time_zone: str
    days_of_week: tuple[int, ...] = ()
    day_of_month: int | None = None

    def __post_init__(self) -> None:
        if self.frequency not in FREQUENCIES:
            raise ValueError(f"frequency must be one of {FREQUENCIES}")
        if self.frequency == "weekly" and (
                not self.days_of_week or any(not 0 <= d <= 6 for d in self.days_of_week)):
            raise ValueError("a weekly rule needs days_of_week within 0..6")
        if self.frequency == "monthly" and (
                self.day_of_month is None or not 1 <= self.day_of_month <= 31):
            raise ValueError("a monthly rule needs day_of_month within 1..31")
        zone(self.time_zone)

    def matches(self, day: date) -> bool:
        """Whether the rule fires on this local date."""
        if self.frequency == "daily":
            return True
        if self.frequency == "weekly":
            return day.weekday() in self.days_of_week
        assert self.day_of_month is not None
        last = calendar.monthrange(day.year, day.month)[1]
        return day.day == min(self.day_of_month, last)


def exists(naive: datetime, tz: ZoneInfo) -> bool:
    """Whether the wall-clock time `naive` happens in `tz` (False inside a spring-forward gap)."""
    back = naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)
    return back.replace(tzinfo=None) == naive


def resolve_local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of `day` `at` in `tz`: the first of two (fall back), or the next valid
    instant when it falls in a gap (spring forward)."""
    naive = datetime.combine(day, at.replace(tzinfo=None))
    for minute in range(_GAP_MINUTES + 1):
        candidate = naive + timedelta(minutes=minute)
        if minute:  # inside a gap: step to the next whole minute that exists
            candidate = candidate.replace(second=0, microsecond=0)
        if exists(candidate, tz):
            return candidate.replace(tzinfo=tz, fold=0).astimezone(UTC)
    raise ValueError("no valid local time within a day")  # no real zone gets here


def next_occurrence(rule: Rule, after: datetime) -> datetime:
    """The first occurrence strictly after `after` (an aware datetime), in UTC."""
    tz = zone(rule.time_zone)
    start = after.astimezone(tz).date() - timedelta(days=1)
    for offset in range(_SEARCH_DAYS):
        day = start + timedelta(days=offset)
        if rule.matches(day):
            at = resolve_local(day, rule.local_time, tz)
            if at > after:
                return at
    raise ValueError("the rule never fires")  # unreachable for a valid Rule


def previous_occurrence(rule: Rule, at_or_before: datetime) -> datetime | None:
    """The latest occurrence at or before `at_or_before`, in UTC (None if none in a year)."""
    tz = zone(rule.time_zone)
    start = at_or_before.astimezone(tz).date() + timedelta(days=1)
    for offset in range(_SEARCH_DAYS):
        day = start - timedelta(days=offset)
        if rule.matches(day):
            at = resolve_local(day, rule.local_time, tz)
            if at <= at_or_before:
                return at
    return None


@dataclass(frozen=True)
class RunPlan:
    """What the scheduler does with a due rule."""

    send_at: datetime | None   # the occurrence to materialize now (None: skip)
    skipped: int               # older occurrences that will never be sent
    next_run_at: datetime      # the rule's next occurrence after now
    late: bool                 # the occurrence is older than the grace period


def plan_run(rule: Rule, due: datetime, now: datetime, *, grace: timedelta,
             missed_policy: str) -> RunPlan:
    """For a rule whose `next_run_at` (`due`) is at or before `now`: which occurrence to send.

    Only the latest occurrence up to `now` may be sent; older missed ones are skipped. It is
    sent when on time (within `grace`) or, when late, if the policy is `send_late`.
    """
    if missed_policy not in MISSED_POLICIES:
        raise ValueError(f"missed_policy must be one of {MISSED_POLICIES}")
    latest = previous_occurrence(rule, now)
    occurrence = latest if latest is not None and latest >= due else due
    skipped = 0
    cursor = due
    while cursor < occurrence and skipped < 10_000:  # count what is dropped (bounded)
        skipped += 1
        cursor = next_occurrence(rule, cursor)
    late = now - occurrence > grace
    send = occurrence if (not late or missed_policy == "send_late") else None
    if send is None:
        skipped += 1
    return RunPlan(send, skipped, next_occurrence(rule, max(now, occurrence)), late)


def quiet_until(now: datetime, start: time | None, end: time | None,
                tz_name: str) -> datetime | None:
    """When `now` is inside the church's quiet hours [start, end) (local; start > end wraps
    midnight), the UTC instant they end; otherwise None."""
    if start is None or end is None or start == end:
        return None
    tz = zone(tz_name)
    local = now.astimezone(tz)
    wall = local.time().replace(tzinfo=None)
    inside = start <= wall < end if start < end else (wall >= start or wall < end)
    if not inside:
        return None
    day = local.date()
    if end <= wall:  # wrapped: the window ends tomorrow morning
        day += timedelta(days=1)
    until = resolve_local(day, end, tz)
    if until <= now:  # fall back: the clock reads the end's hour again; it ends the 2nd time
        until = datetime.combine(day, end, tzinfo=tz).replace(fold=1).astimezone(UTC)
    return until


def month_start(now: datetime, tz_name: str) -> datetime:
    """The UTC instant the current calendar month began in `tz_name`."""
    tz = zone(tz_name)
    local = now.astimezone(tz)
    return resolve_local(local.date().replace(day=1), time(0, 0), tz)
