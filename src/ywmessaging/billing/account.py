"""What an owner does with the church's Stripe account: start a checkout for a plan, open the
billing portal, read the invoices.

The church's Stripe customer is made on first use (one per church, found again by its
metadata) and recorded in the registry with a history row, so Stripe's webhooks are routed to
the church by it. Nothing here changes the plan: that happens only when Stripe says so
(billing/webhooks.py).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from ..church.pagination import InvalidCursor
from ..config import Settings
from ..errors import AppError, FieldError, ValidationFailed
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from .errors import BillingNotFound
from .notices import billing_link
from .state import BillingState, Entitlement, catalogue_of, store_state
from .stripe_client import StripeBilling
from .stripe_types import CheckoutSession, Invoice

CYCLES = ("monthly", "annual")
# a subscription in one of these is still the church's: change it in the portal
LIVE = frozenset({"trialing", "active", "past_due", "unpaid", "paused", "incomplete"})
# Stripe refuses a subscription trial that ends less than 48 hours ahead; keep a margin
MIN_TRIAL_LEFT = timedelta(hours=49)
# two clicks on "Subscribe" within this window get the same Checkout Session
CHECKOUT_REUSE = 600


class SubscriptionExists(AppError):
    status, code, title = 409, "subscription_exists", "The church already has a subscription"


class CheckoutCompleted(AppError):
    status, code, title = 409, "checkout_completed", "This checkout was just paid"


def checked_plan(settings: Settings, plan: Any, cycle: Any) -> tuple[str, str]:
    """The (plan, cycle) asked for, or 422 naming each bad field."""
    errors = []
    codes = catalogue_of(settings).codes()
    if plan not in codes:
        errors.append(FieldError("plan", "unknown_plan",
                                 f"plan must be one of {', '.join(codes)}"))
    if cycle not in CYCLES:
        errors.append(FieldError("cycle", "unknown_cycle", "cycle must be monthly or annual"))
    if errors:
        raise ValidationFailed(errors=errors)
    return str(plan), str(cycle)


async def customer_of(registry: Any, conn: Any, settings: Settings, stripe: StripeBilling,
                      tenant_id: uuid.UUID, state: BillingState) -> str:
    """The church's Stripe customer id, made and recorded on first use."""
    q = tq(settings.sql_dir)
    church = await q.get_settings(conn)
    owners = [r["email"] for r in await q.billing_owner_emails(conn)]
    customer = await stripe.ensure_customer(
        str(tenant_id), name=church["church_name"] or "Church",
        email=owners[0] if owners else None, customer_id=state.stripe_customer_id)
    if customer != state.stripe_customer_id:
        async with registry.acquire() as reg, reg.transaction():
            row = await rq(settings.sql_dir).billing_lock_state(reg, tenant_id)
            old = BillingState.from_row(row)
            await store_state(reg, settings, tenant_id, old,
                              replace(old, stripe_customer_id=customer), source="stripe",
                              event_id=None)
    return customer


def _trial_left(state: BillingState, now: datetime) -> datetime | None:
    """The end of the church's own trial, to carry into the subscription (None: charge now)."""
    if state.subscription_status != "trialing" or state.stripe_subscription_id is not None:
        return None
    end = state.trial_ends_at
    return end if end is not None and end - now >= MIN_TRIAL_LEFT else None


async def checkout(registry: Any, conn: Any, settings: Settings, stripe: StripeBilling,
                   tenant_id: uuid.UUID, ent: Entitlement, plan: str, cycle: str,
                   now: datetime) -> CheckoutSession:
    """A Checkout Session for `plan` billed `cycle`; what is left of the trial (two days or
    more) stays free. 409 `subscription_exists` while a subscription is live."""
    state = ent.state
    if state.stripe_subscription_id is not None and state.subscription_status in LIVE:
        raise SubscriptionExists(
            "change or cancel the plan in the billing portal (POST /api/v1/billing/portal)",
            plan=state.plan, status_of_subscription=state.subscription_status)
    customer = await customer_of(registry, conn, settings, stripe, tenant_id, state)
    price = await stripe.price(f"{plan}_{cycle}")
    trial_end = _trial_left(state, now)
    link = billing_link(settings)
    key = (f"ywm-checkout-{tenant_id}-{price.id}-{int(trial_end.timestamp()) if trial_end else 0}"
           f"-{int(now.timestamp()) // CHECKOUT_REUSE}")
    args: dict[str, Any] = {
        "church_id": str(tenant_id), "customer_id": customer, "price_id": price.id,
        "success_url": f"{link}?checkout=success", "cancel_url": f"{link}?checkout=cancel",
        "trial_end": trial_end}
    session = await stripe.create_checkout(**args, idempotency_key=key)
    # A reused key replays the first answer, `open` whatever became of that session since:
    # ask Stripe how it is now.
    status = await stripe.checkout_status(session.id)
    if status == "complete":   # paid; the webhook has not been applied yet
        raise CheckoutCompleted("the payment went through; the plan changes in a moment "
                                "(GET /api/v1/billing/plan)", session_id=session.id)
    if status != "open":       # expired: a new session
        session = await stripe.create_checkout(**args)
    return session


async def portal(registry: Any, conn: Any, settings: Settings, stripe: StripeBilling,
                 tenant_id: uuid.UUID, ent: Entitlement) -> str:
    """The URL of a billing-portal session for the church (card, plan, invoices, cancel)."""
    customer = await customer_of(registry, conn, settings, stripe, tenant_id, ent.state)
    return await stripe.create_portal(customer, billing_link(settings))


def invoice_json(inv: Invoice) -> dict[str, Any]:
    """An invoice as the API shows it."""
    def iso(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {"id": inv.id, "number": inv.number, "status": inv.status,
            "amount_due": inv.amount_due, "amount_paid": inv.amount_paid,
            "currency": inv.currency, "created": iso(inv.created),
            "period_start": iso(inv.period_start), "period_end": iso(inv.period_end),
            "hosted_invoice_url": inv.hosted_invoice_url, "invoice_pdf": inv.invoice_pdf}


async def invoices(stripe: StripeBilling, ent: Entitlement, limit: int,
                   cursor: str | None) -> dict[str, Any]:
    """One page of the church's invoices, newest first (none before its first checkout)."""
    customer = ent.state.stripe_customer_id
    if customer is None:
        return {"items": [], "next_cursor": None}
    try:
        page = await stripe.invoices(customer, limit=limit, starting_after=cursor)
    except BillingNotFound:   # a cursor that is no invoice of this customer's
        if cursor is None:
            raise
        raise InvalidCursor() from None
    return {"items": [invoice_json(inv) for inv in page.invoices],
            "next_cursor": page.next_cursor}
