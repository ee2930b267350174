"""The monthly message quota: outbox rows queued this calendar month in the church's time zone.

Until billing sets plan limits, every plan gets `YWM_MONTHLY_MESSAGE_QUOTA` messages (one per
recipient, whatever the segment count; skipped and cancelled rows are free). The check takes a
per-church advisory lock for the rest of the caller's transaction, so two broadcasts created at
once cannot both squeeze under the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..config import Settings
from ..errors import AppError
from ..sqlq import tenant as tq
from .schedule import month_start


class QuotaExceeded(AppError):
    status, code, title = 402, "quota_exceeded", "This month's message quota is used up"


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


async def usage(conn: Any, settings: Settings, time_zone: str, now: datetime) -> Usage:
    """This month's usage (no lock)."""
    since = month_start(now, time_zone)
    used = await tq(settings.sql_dir).bc_month_usage(conn, since)
    limit = settings.monthly_message_quota or None
    return Usage(int(used), limit, since)


async def reserve(conn: Any, settings: Settings, time_zone: str, now: datetime,
                  adding: int) -> Usage:
    """Lock the church's quota for this transaction and refuse (402) if `adding` more messages
    would exceed it. Call inside the transaction that writes the outbox rows."""
    await tq(settings.sql_dir).bc_lock_quota(conn)
    current = await usage(conn, settings, time_zone, now)
    if current.limit is not None and current.used + adding > current.limit:
        raise QuotaExceeded(
            f"{adding} more messages would pass this month's limit of {current.limit} "
            f"({current.used} used)", used=current.used, limit=current.limit, requested=adding)
    return current
