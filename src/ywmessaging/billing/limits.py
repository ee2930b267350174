"""Plan limits where they bite: members, branches, co-admins, messages a month.

A check runs inside the transaction that creates: it takes a per-church advisory lock for that
limit (held to the end of the transaction), counts, and refuses with 402 `plan_limit_reached`
when the creation would pass the limit. Two creations at the limit therefore run one after the
other, and the second counts the first. Only creation is refused: a church whose plan shrank
keeps everything it has.
"""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..errors import AppError
from ..sqlq import tenant as tq
from .state import Entitlement

_COUNTS = {"members": "limit_count_members", "branches": "limit_count_branches",
           "co_admins": "limit_count_co_admins"}


class PlanLimitReached(AppError):
    status, code, title = 402, "plan_limit_reached", "The church's plan allows no more"


def refusal(ent: Entitlement, resource: str, used: int, adding: int) -> PlanLimitReached:
    """The 402 for `adding` more of `resource` over the plan's limit."""
    limit = ent.plan.limits.of(resource)
    return PlanLimitReached(
        f"the {ent.plan.name} plan allows {limit} {resource.replace('_', ' ')} "
        f"({used} used, {adding} more asked)",
        limit=limit, used=used, plan=ent.plan.code, resource=resource, requested=adding)


async def room(conn: Any, settings: Settings, ent: Entitlement, resource: str) -> int | None:
    """Lock `resource`'s limit for this transaction; how many more may be created (None:
    unlimited)."""
    limit = ent.plan.limits.of(resource)
    q = tq(settings.sql_dir)
    await q.limit_lock(conn, resource)
    if limit is None:
        return None
    used: int = await getattr(q, _COUNTS[resource])(conn)
    return max(0, limit - used)


async def reserve(conn: Any, settings: Settings, ent: Entitlement, resource: str,
                  adding: int = 1) -> None:
    """Lock `resource`'s limit for this transaction and refuse (402) if `adding` more would
    pass it. Call inside the transaction that creates."""
    limit = ent.plan.limits.of(resource)
    q = tq(settings.sql_dir)
    await q.limit_lock(conn, resource)
    if limit is None:
        return
    used: int = await getattr(q, _COUNTS[resource])(conn)
    if used + adding > limit:
        raise refusal(ent, resource, used, adding)
