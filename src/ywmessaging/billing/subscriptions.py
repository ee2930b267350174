"""Applying a Stripe subscription to a church's billing state, never going back in time.

A webhook handler fetches the subscription from Stripe when an event arrives and hands it here
as a `Snapshot`. Two handlers may fetch at different moments and finish in either order, so a
snapshot older than what is stored is ignored: a subscription created before the stored one,
an earlier billing period of the same subscription, or, within one period, a lower status rank
(state.RANK). A snapshot that changes nothing (a replayed event) writes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from ..config import Settings
from ..errors import NotFound
from ..messaging import queue
from ..sqlq import registry as rq
from ..tenants import lifecycle
from .state import RANK, STATUSES, BillingState, catalogue_of, stopped_because, store_state
from .stripe_types import Subscription

log = structlog.get_logger("ywm.billing")
CYCLES = {"monthly": "monthly", "month": "monthly", "annual": "annual", "year": "annual"}


@dataclass(frozen=True)
class Snapshot:
    """The facts of one Stripe subscription that the church's state is made of."""

    subscription_id: str
    customer_id: str
    status: str
    created: datetime
    plan: str
    cycle: str
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    trial_end: datetime | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown subscription status {self.status!r}")
        if self.cycle not in ("monthly", "annual"):
            raise ValueError(f"unknown billing cycle {self.cycle!r}")

    @classmethod
    def of(cls, sub: Subscription) -> Snapshot:
        """From a subscription as the adapter reads it (its price's `lookup_key` is
        `<plan>_<monthly|annual>`; without one, the cycle follows the price's interval). A
        ValueError when it is not one of ours (no creation time, an unknown status or cycle)."""
        code, _, cycle = (sub.lookup_key or "").rpartition("_")
        if sub.created is None:
            raise ValueError("the subscription has no creation time")
        return cls(
            subscription_id=sub.id, customer_id=sub.customer, status=sub.status,
            created=sub.created, plan=code or "",
            cycle=CYCLES.get(cycle) or CYCLES.get(sub.interval or "", "monthly"),
            current_period_end=sub.current_period_end,
            cancel_at_period_end=sub.cancel_at_period_end, trial_end=sub.trial_end)

    def key(self) -> tuple[datetime, datetime, int]:
        """Order of snapshots of one subscription: period, then status rank."""
        return (self.created, self.current_period_end or datetime.min.replace(tzinfo=UTC),
                RANK[self.status])


def _older(snap: Snapshot, old: BillingState) -> bool:
    """Whether `snap` is older than the stored state (which may have no subscription yet)."""
    if old.stripe_subscription_id is None or old.stripe_subscription_created is None:
        return False
    if snap.subscription_id != old.stripe_subscription_id:
        return snap.created < old.stripe_subscription_created
    stored = (old.stripe_subscription_created,
              old.current_period_end or datetime.min.replace(tzinfo=UTC),
              RANK.get(old.subscription_status, 0))
    return snap.key() < stored


def _next(snap: Snapshot, old: BillingState, now: datetime) -> BillingState:
    past_due_since = None
    if snap.status == "past_due":
        past_due_since = old.past_due_since if old.subscription_status == "past_due" else now
        past_due_since = past_due_since or now
    return replace(
        old, plan=snap.plan, billing_cycle=snap.cycle, subscription_status=snap.status,
        trial_ends_at=snap.trial_end if snap.status == "trialing" and snap.trial_end
        else old.trial_ends_at,
        current_period_end=snap.current_period_end,
        cancel_at_period_end=snap.cancel_at_period_end, past_due_since=past_due_since,
        stripe_customer_id=snap.customer_id, stripe_subscription_id=snap.subscription_id,
        stripe_subscription_created=snap.created)


async def apply_subscription(conn: Any, settings: Settings, tenant_id: uuid.UUID,
                             snapshot: Snapshot, event_id: str | None, *,
                             now: datetime | None = None) -> bool:
    """Apply a Stripe subscription to the church's state with a history row naming `event_id`;
    False when it is older than the stored state or changes nothing. A church that may send
    again is put on the work queue, so messages held while it could not go out now."""
    now = now or datetime.now(UTC)
    if snapshot.plan not in catalogue_of(settings).codes():
        log.warning("billing_unknown_plan", tenant_id=str(tenant_id), plan=snapshot.plan,
                    event_id=event_id)
    q = rq(settings.sql_dir)
    async with conn.transaction():
        row = await q.billing_lock_state(conn, tenant_id)
        if row is None:
            raise NotFound("no such church")
        old = BillingState.from_row(row)
        if _older(snapshot, old):
            log.info("billing_snapshot_ignored", tenant_id=str(tenant_id), event_id=event_id,
                     reason="older", status=snapshot.status)
            return False
        new = _next(snapshot, old, now)
        changed = await store_state(conn, settings, tenant_id, old, new, source="stripe",
                               event_id=event_id)
        sending = stopped_because(new, now, timedelta(days=settings.billing_grace_days)) is None
        if changed and sending and row["tenant_status"] == "suspended":
            # in the same transaction: only a suspension by billing is lifted here
            await lifecycle.resume(conn, settings, tenant_id, actor="billing",
                                   reason=f"subscription {new.subscription_status}",
                                   only_billing=True)
    if changed and sending:
        await queue.enqueue(conn, settings, tenant_id, now)
    return changed
