"""NPS: an admin's 0-10 answer to "how likely are you to recommend us", and the church's score
(% promoters 9-10 minus % detractors 0-6, from -100 to 100)."""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..sqlq import tenant as tq
from . import Actor, audit, rows_json

CATEGORIES = ("feedback", "feature_request", "bug", "general", "other")


async def submit(conn: Any, settings: Settings, actor: Actor, *, score: int, category: str,
                 comment: str | None) -> dict[str, Any]:
    """Record one answer (with its audit row)."""
    async with conn.transaction():
        row = await tq(settings.sql_dir).insert_nps(conn, score, category, comment,
                                                     actor.admin_id)
        await audit(conn, settings, actor, "nps.submit", "nps_response", row["id"],
                    {"score": score, "category": category})
    return rows_json(row, ("id", "admin_id"))


def _score(row: Any) -> dict[str, Any]:
    n = row["responses"]
    return {
        "responses": n, "promoters": row["promoters"], "passives": row["passives"],
        "detractors": row["detractors"], "average": row["average"],
        "nps": round(100 * (row["promoters"] - row["detractors"]) / n) if n else None,
    }


async def summary(conn: Any, settings: Settings, days: int) -> dict[str, Any]:
    """The score over the last `days` days, overall and by category."""
    rows = await tq(settings.sql_dir).nps_summary(conn, days)
    total = next(r for r in rows if r["category"] is None)
    return {"days": days, **_score(total),
            "by_category": {r["category"]: _score(r) for r in rows if r["category"]}}


LIST_KIND = "nps:created:desc"


async def list_page(conn: Any, settings: Settings, *, category: str | None,
                    after: tuple[Any, ...] | None, limit: int) -> list[Any]:
    """`limit + 1` answers, newest first, after the cursor position."""
    at, last_id = after if after else (None, None)
    rows: list[Any] = await tq(settings.sql_dir).nps_page(conn, at, last_id, limit + 1,
                                                          category)
    return rows
