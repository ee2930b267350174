"""The monthly message limit: outbox rows queued this calendar month in the church's time zone.

The church's plan sets the limit (`messages_per_month`, billing/catalogue.py): one message per
recipient, whatever the segment count; skipped and cancelled rows are free. Over it: 402
`plan_limit_reached`. The check takes a per-church advisory lock for the rest of the caller's
transaction, so two broadcasts created at once cannot both squeeze under the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..billing.limits import refusal
from ..billing.state import Entitlement
from ..config import Settings
from ..sqlq import tenant as tq
from .schedule import month_start

RESOURCE = "messages_per_month"


@dataclass(frozen=True)
class Usage:
    """Messages used this month, the limit (None: unlimited) and when the month began."""

    used: int
    limit: int | None
    since: datetime

    @property
    def remaining(self) -> int | None:
        """Messages still allowed this month (None: unlimited)."""
        return None if self.limit is None else max(0, self.limit - self.used)

    def as_json(self) -> dict[str, Any]:
        """The API shape."""
        return {"used": self.used, "limit": self.limit, "remaining": self.remaining,
                "period_start": self.since.isoformat()}


async def usage(conn: Any, settings: Settings, ent: Entitlement, time_zone: str,
                now: datetime) -> Usage:
    """This month's usage against the plan's limit (no lock)."""
    since = month_start(now, time_zone)
    used = await tq(settings.sql_dir).bc_month_usage(conn, since)
    return Usage(int(used), ent.plan.limits.messages_per_month, since)


async def reserve(conn: Any, settings: Settings, ent: Entitlement, time_zone: str,
                  now: datetime, adding: int) -> Usage:
    """Lock the church's monthly count for this transaction and refuse (402
    `plan_limit_reached`) if `adding` more messages would pass the plan's limit. Call inside
    the transaction that writes the outbox rows."""
    await tq(settings.sql_dir).bc_lock_quota(conn)
    current = await usage(conn, settings, ent, time_zone, now)
    if current.limit is not None and current.used + adding > current.limit:
        raise refusal(ent, RESOURCE, current.used, adding)
    return current
