"""The worker's lifecycle rounds (run with housekeeping, one worker at a time):
suspend the churches whose sending has been stopped for billing reasons longer than
YWM_BILLING_SUSPEND_AFTER_DAYS, and tear down the churches whose deletion is due.

Rule (ops/runbook-lifecycle.md): a church is suspended automatically when
`billing/state.py stopped_since` (trial ended, past due beyond YWM_BILLING_GRACE_DAYS,
canceled past the period end, unpaid) lies more than YWM_BILLING_SUSPEND_AFTER_DAYS back;
`suspended_by = billing`, actor `billing`. A subscription that becomes active again resumes
it (billing/subscriptions.py); an operator's suspension waits for an operator.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from ..billing.state import BillingState, stopped_because, stopped_since
from ..config import Settings
from ..sqlq import registry as rq
from ..tenants import lifecycle
from .teardown import Teardown

log = structlog.get_logger("ywm.lifecycle")
DELETIONS_PER_ROUND = 20


async def suspend_lapsed(registry: Any, settings: Settings, now: datetime) -> list[uuid.UUID]:
    """Suspend (by billing) the churches whose sending was stopped too long; their ids."""
    if settings.billing_suspend_after_days <= 0:
        return []
    grace = timedelta(days=settings.billing_grace_days)
    after = timedelta(days=settings.billing_suspend_after_days)
    done: list[uuid.UUID] = []
    for row in await rq(settings.sql_dir).lc_suspend_candidates(registry):
        state = BillingState.from_row(row)
        since = stopped_since(state, now, grace)
        if since is None or now < since + after:
            continue
        reason = f"billing: sending stopped ({stopped_because(state, now, grace)}) since " \
                 f"{since.date().isoformat()}"
        try:
            if await lifecycle.suspend(registry, settings, row["id"], by="billing",
                                       actor="billing", reason=reason):
                done.append(row["id"])
        except Exception as exc:   # one church's trouble is not the round's
            log.warning("auto_suspend_failed", tenant_id=str(row["id"]),
                        error=type(exc).__name__)
    return done


@dataclass
class DeletionRound:
    """The churches torn down (and those that failed, to be retried next round)."""

    deleted: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)


async def delete_due(teardown: Teardown, now: datetime,
                     limit: int = DELETIONS_PER_ROUND) -> DeletionRound:
    """Tear down every church whose deletion is due (or whose teardown stopped halfway)."""
    out = DeletionRound()
    rows = await rq(teardown.settings.sql_dir).lc_due_deletions(teardown.registry, now, limit)
    for row in rows:
        try:
            ran = await teardown.run(row["id"], actor="worker", due_by=now)
        except Exception as exc:   # resumes at the failed step next round
            log.warning("teardown_failed", tenant_id=str(row["id"]), error=repr(exc)[:200])
            out.failed.append(row["id"])
            continue
        if ran:   # nothing ran: cancelled since it was listed, or already deleted
            out.deleted.append(row["id"])
    return out
