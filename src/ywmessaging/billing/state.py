"""A church's billing state in the registry: what it may do now, and how it changes.

The state lives on the church's `tenants` row (registry 0009); every change bumps
`billing_version` and writes a `billing_history` row in the same transaction, which locks the
row first, so concurrent changes are applied one after the other. A Stripe subscription is
applied by `subscriptions.apply_subscription`, which never moves a church back to an older
state.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog

from ..config import Settings
from ..errors import AppError, NotFound
from ..sqlq import registry as rq
from .catalogue import Catalogue, Plan, load

log = structlog.get_logger("ywm.billing")

STATUSES = ("trialing", "active", "past_due", "canceled", "unpaid", "incomplete",
            "incomplete_expired", "paused")
# Within one subscription and one billing period, a later snapshot never has a lower rank: a
# payment recovers past_due/unpaid to active, and canceled or expired is final. (A renewal
# that fails moves the period on, so active → past_due is ordered by the period.)
RANK = {"incomplete": 0, "trialing": 1, "past_due": 2, "unpaid": 3, "paused": 3,
         "active": 4, "canceled": 5, "incomplete_expired": 5}


class SubscriptionInactive(AppError):
    status, code, title = 402, "subscription_inactive", "The church's subscription is not active"


@dataclass(frozen=True)
class BillingState:
    """The billing columns of a church's registry row."""

    plan: str
    billing_cycle: str | None
    subscription_status: str
    trial_ends_at: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    past_due_since: datetime | None
    stripe_customer_id: str | None
    stripe_subscription_id: str | None
    stripe_subscription_created: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> BillingState:
        """From a `billing_state` row."""
        return cls(**{f.name: row[f.name] for f in fields(cls)})

    def as_json(self) -> dict[str, Any]:
        """For the history's old/new columns."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class Entitlement:
    """What a church may do now: its plan's limits, and whether it may send (if not, why)."""

    plan: Plan
    state: BillingState
    stopped: str | None          # trial_ended, past_due, canceled, unpaid, ... or None
    time_zone: str = "UTC"

    @property
    def sending(self) -> bool:
        """Whether messages may be queued and sent."""
        return self.stopped is None

    def require_sending(self) -> None:
        """402 `subscription_inactive` unless the church may send."""
        if self.stopped is not None:
            raise SubscriptionInactive(
                f"sending is paused ({self.stopped}); reading, export and STOP/HELP replies "
                "still work", reason=self.stopped, status_of_subscription=self.state
                .subscription_status, plan=self.plan.code)


def stopped_because(state: BillingState, now: datetime, grace: timedelta) -> str | None:
    """Why sending is stopped now (None: it is not)."""
    status = state.subscription_status
    if status == "active":
        return None
    if status == "past_due":
        since = state.past_due_since
        return None if since is None or now < since + grace else "past_due"
    if status == "canceled":
        end = state.current_period_end
        return None if end is not None and now < end else "canceled"
    if status in ("trialing", "incomplete"):  # checkout started: the trial still runs
        end = state.trial_ends_at
        return None if end is None or now < end else "trial_ended"
    return status


def stopped_since(state: BillingState, now: datetime, grace: timedelta) -> datetime | None:
    """Since when sending has been stopped for billing reasons (None: it is not, or the
    moment is unknown): the trial's end, the past-due grace's end, the canceled period's end."""
    reason = stopped_because(state, now, grace)
    if reason is None:
        return None
    if reason == "trial_ended":
        return state.trial_ends_at
    if reason == "canceled":
        return state.current_period_end
    if state.past_due_since is not None:   # past_due, unpaid: after the grace
        return state.past_due_since + grace
    return state.current_period_end


def catalogue_of(settings: Settings) -> Catalogue:
    """The deployment's plan catalogue (read once per file)."""
    return load(settings.billing_catalogue)


async def entitlement(registry: Any, settings: Settings, tenant_id: uuid.UUID,
                      now: datetime) -> Entitlement:
    """A church's plan and sending state now (one registry read; `registry` a pool or conn)."""
    row = await rq(settings.sql_dir).billing_state(registry, tenant_id)
    if row is None:
        raise NotFound("no such church")
    state = BillingState.from_row(row)
    grace = timedelta(days=settings.billing_grace_days)
    return Entitlement(catalogue_of(settings).plan(state.plan), state,
                       stopped_because(state, now, grace), row["time_zone"])


async def history(registry: Any, settings: Settings, tenant_id: uuid.UUID) -> list[Any]:
    """A church's billing changes, oldest first."""
    rows: list[Any] = await rq(settings.sql_dir).billing_history(registry, tenant_id)
    return rows


async def record(conn: Any, settings: Settings, tenant_id: uuid.UUID, version: int, *,
                 source: str, old: BillingState | None, new: BillingState,
                 event_id: str | None = None) -> None:
    """Write one history row (in the caller's transaction)."""
    await rq(settings.sql_dir).billing_record(
        conn, tenant_id, version, source, event_id,
        None if old is None else orjson.dumps(old.as_json()).decode(),
        orjson.dumps(new.as_json()).decode())


def trial_end(settings: Settings, now: datetime) -> datetime:
    """When a trial begun `now` ends."""
    return now + timedelta(days=catalogue_of(settings).trial_days)


async def set_state(conn: Any, settings: Settings, tenant_id: uuid.UUID, new: BillingState, *,
                    source: str, event_id: str | None = None) -> bool:
    """Store `new` as the church's state with a history row, unless nothing changes; must run
    inside a transaction. True when something changed."""
    row = await rq(settings.sql_dir).billing_lock_state(conn, tenant_id)
    if row is None:
        raise NotFound("no such church")
    old = BillingState.from_row(row)
    return await store_state(conn, settings, tenant_id, old, new, source=source, event_id=event_id)


async def store_state(conn: Any, settings: Settings, tenant_id: uuid.UUID, old: BillingState,
                 new: BillingState, *, source: str, event_id: str | None) -> bool:
    if new == old:
        return False
    version = await rq(settings.sql_dir).billing_set_state(
        conn, tenant_id, new.plan, new.billing_cycle, new.subscription_status,
        new.trial_ends_at, new.current_period_end, new.cancel_at_period_end,
        new.past_due_since, new.stripe_customer_id, new.stripe_subscription_id,
        new.stripe_subscription_created)
    await record(conn, settings, tenant_id, version, source=source, old=old, new=new,
                 event_id=event_id)
    log.info("billing_state_changed", tenant_id=str(tenant_id), source=source,
             event_id=event_id, plan=new.plan, status=new.subscription_status,
             version=version)
    return True

