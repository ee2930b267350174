"""Analytics from the church's own tables, computed on each request.

The old system cached these under keys without the church (`stats:stats:30d`), so one church
could be shown another's figures. Here every figure is one query on the requesting church's
own database and nothing is cached, so that cannot happen by construction.
"""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..errors import ValidationFailed
from ..sqlq import tenant as tq

DEFAULT_DAYS = 30
MAX_DAYS = 365


def parse_days(raw: str | None) -> int:
    """`days` from a query string: 1..MAX_DAYS, DEFAULT_DAYS when absent (else 422)."""
    if raw is None:
        return DEFAULT_DAYS
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise ValidationFailed(f"days must be an integer from 1 to {MAX_DAYS}", field="days")
    return int(raw)


def rate(part: int, whole: int) -> float | None:
    """part / whole to four places, None when there is nothing to divide."""
    return round(part / whole, 4) if whole else None


async def summary(conn: Any, settings: Settings) -> dict[str, Any]:
    """Headline figures: directory sizes, this month's messages, the last 30 days' delivery."""
    row = dict(await tq(settings.sql_dir).analytics_summary(conn))
    row["members_opted_in"] = row["members_total"] - row["members_opted_out"]
    row["delivery_rate_30d"] = rate(row["delivered_30d"], row["sent_30d"])
    return row


async def messages(conn: Any, settings: Settings, days: int) -> dict[str, Any]:
    """Outbox counts by church-local day over the last `days` days, with totals."""
    rows = await tq(settings.sql_dir).analytics_messages_by_day(conn, days)
    names = ("sent", "delivered", "failed", "unknown", "pending")
    by_day = [{"date": r["day"].isoformat(), **{n: r[n] for n in names},
               "delivery_rate": rate(r["delivered"], r["sent"])} for r in rows]
    totals = {n: sum(d[n] for d in by_day) for n in names}
    return {"days": days, "time_zone": rows[0]["time_zone"], **totals,
            "delivery_rate": rate(totals["delivered"], totals["sent"]), "by_day": by_day}


async def members(conn: Any, settings: Settings, days: int) -> dict[str, Any]:
    """New members, opt-outs and opt-ins by church-local day, with the running total."""
    rows = await tq(settings.sql_dir).analytics_members_by_day(conn, days)
    by_day = [{"date": r["day"].isoformat(), "new_members": r["new_members"],
               "opt_outs": r["opt_outs"], "opt_ins": r["opt_ins"],
               "total_members": r["total_members"]} for r in rows]
    start = by_day[0]["total_members"] - by_day[0]["new_members"]
    end = by_day[-1]["total_members"]
    return {
        "days": days, "time_zone": rows[0]["time_zone"],
        "new_members": sum(d["new_members"] for d in by_day),
        "opt_outs": sum(d["opt_outs"] for d in by_day),
        "opt_ins": sum(d["opt_ins"] for d in by_day),
        "total_members": end, "growth": end - start,
        "growth_rate": rate(end - start, start), "by_day": by_day,
    }


async def branches(conn: Any, settings: Settings, days: int) -> dict[str, Any]:
    """Each branch's members now and the messages sent to them over the last `days` days."""
    rows = await tq(settings.sql_dir).analytics_branches(conn, days)
    return {"days": days, "items": [
        {"id": str(r["id"]), "name": r["name"], "members": r["members"], "sent": r["sent"],
         "delivered": r["delivered"], "delivery_rate": rate(r["delivered"], r["sent"])}
        for r in rows]}
