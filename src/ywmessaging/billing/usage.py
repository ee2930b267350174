"""What a church's plan allows against what it uses, and its messages by local day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..config import Settings
from ..errors import ValidationFailed
from ..messaging.schedule import month_start
from ..sqlq import tenant as tq
from .catalogue import LIMITS
from .state import Entitlement

MAX_DAYS = 366
FIRST_YEAR, LAST_YEAR = 2000, 2100   # the days a usage report may name


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


async def plan_view(conn: Any, settings: Settings, ent: Entitlement,
                    now: datetime) -> dict[str, Any]:
    """The plan, its limits, what is used and what remains, and the subscription's dates."""
    church = await tq(settings.sql_dir).get_settings(conn)
    since = month_start(now, church["time_zone"])
    used = await tq(settings.sql_dir).plan_usage(conn, since)
    limits = ent.plan.limits
    st = ent.state
    return {
        "plan": {"code": ent.plan.code, "name": ent.plan.name,
                 "monthly_cents": ent.plan.monthly_cents,
                 "annual_cents": ent.plan.annual_cents},
        "cycle": st.billing_cycle,
        "status": st.subscription_status,
        "sending": ent.sending,
        "sending_stopped_reason": ent.stopped,
        "limits": limits.as_json(),
        "usage": {name: int(used[name]) for name in LIMITS},
        "remaining": {name: None if limits.of(name) is None
                      else max(0, (limits.of(name) or 0) - int(used[name]))
                      for name in LIMITS},
        "messages_period_start": since.isoformat(),
        "trial_ends_at": _iso(st.trial_ends_at),
        "current_period_end": _iso(st.current_period_end),
        "cancel_at_period_end": st.cancel_at_period_end,
        "past_due_since": _iso(st.past_due_since),
    }


@dataclass(frozen=True)
class Range:
    """Local days `first`..`last`, both included."""

    first: date
    last: date


def parse_range(raw_from: str | None, raw_to: str | None, today: date) -> Range:
    """`from`/`to` (YYYY-MM-DD, local days, both included): default this month so far; at
    most MAX_DAYS days, `from` not after `to` (else 422)."""
    def day(name: str, raw: str | None, default: date) -> date:
        if raw is None:
            return default
        try:
            found = date.fromisoformat(raw)
        except ValueError:
            raise ValidationFailed(f"{name} must be a date (YYYY-MM-DD)", field=name) from None
        if not FIRST_YEAR <= found.year <= LAST_YEAR:   # (year 9999 cannot take its next day)
            raise ValidationFailed(f"{name} must be in the years {FIRST_YEAR}..{LAST_YEAR}",
                                   field=name, error_code="out_of_range")
        return found

    last = day("to", raw_to, today)
    first = day("from", raw_from, last.replace(day=1))
    if first > last:
        raise ValidationFailed("from must not be after to", field="from",
                               error_code="empty_range")
    if (last - first).days + 1 > MAX_DAYS:
        raise ValidationFailed(f"the range may span at most {MAX_DAYS} days", field="from",
                               error_code="range_too_long")
    return Range(first, last)


async def by_day(conn: Any, settings: Settings, span: Range, time_zone: str) -> dict[str, Any]:
    """Messages, segments and estimated cost per local day of `span` (every day present)."""
    tz = ZoneInfo(time_zone)
    start = datetime.combine(span.first, time(), tz)
    end = datetime.combine(span.last + timedelta(days=1), time(), tz)
    rows = await tq(settings.sql_dir).usage_by_day(conn, start, end, time_zone)
    found = {r["day"]: r for r in rows}
    per = settings.cost_per_segment
    days: list[dict[str, Any]] = []
    total_messages = total_segments = 0
    day = span.first
    while day <= span.last:
        r = found.get(day)
        messages, segments = (int(r["messages"]), int(r["segments"])) if r else (0, 0)
        days.append({"day": day.isoformat(), "messages": messages, "segments": segments,
                     "cost": round(segments * per, 4)})
        total_messages, total_segments = total_messages + messages, total_segments + segments
        day += timedelta(days=1)
    return {"from": span.first.isoformat(), "to": span.last.isoformat(),
            "time_zone": time_zone, "currency": "USD", "cost_per_segment": per,
            "days": days,
            "totals": {"messages": total_messages, "segments": total_segments,
                       "cost": round(total_segments * per, 4)}}


async def report(conn: Any, settings: Settings, raw_from: str | None, raw_to: str | None,
                 now: datetime) -> dict[str, Any]:
    """`by_day` for a range given as query strings, in the church's time zone."""
    time_zone = (await tq(settings.sql_dir).get_settings(conn))["time_zone"]
    span = parse_range(raw_from, raw_to, now.astimezone(ZoneInfo(time_zone)).date())
    return await by_day(conn, settings, span, time_zone)
