"""Stripe's webhooks: stored in the registry's durable inbox (provider `stripe`) once their
signature is verified, then applied to the church's billing state.

An event is only a hint that something changed: processing fetches the subscription from
Stripe as it is now and hands it to `apply_subscription`, which never moves a church back. So
an old, replayed or out-of-order event cannot put back an older state, and an event that
arrives while Stripe is unreachable is retried from the inbox with backoff.

The church is found by the Stripe customer it has on record (`tenants.stripe_customer_id`,
stored when checkout or the portal first made the customer); a subscription whose customer no
church holds is taken by the church named in the subscription's metadata only if that church
has no customer yet. The event's body never names the church on its own authority.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import stripe
import structlog

from ..auth.emails import Email, EmailSender
from ..config import Settings
from ..errors import AppError, TenantNotFound, TenantSuspended
from ..messaging.webhooks import (
    PROCESS_TIMEOUT,
    Outcome,
    WebhookMalformed,
    backoff,
    claim_and_process,
    claim_and_process_due,
    event_key,
    settle,
    storable,
)
from ..observability.metrics import Metrics
from ..sqlq import registry as rq
from .errors import BillingNotFound
from .notices import billing_link, notify_owners, payment_action_email, payment_failed_email
from .stripe_client import StripeBilling
from .stripe_types import Subscription
from .subscriptions import Snapshot, apply_subscription

log = structlog.get_logger("ywm.billing")
PROVIDER = "stripe"
SUBSCRIPTION_EVENTS = frozenset({
    "customer.subscription.created", "customer.subscription.updated",
    "customer.subscription.deleted", "customer.subscription.trial_will_end"})
INVOICE_EVENTS = frozenset({
    "invoice.paid", "invoice.payment_failed", "invoice.payment_action_required"})
CHECKOUT_EVENTS = frozenset({"checkout.session.completed"})
EVENT_TYPES = SUBSCRIPTION_EVENTS | INVOICE_EVENTS | CHECKOUT_EVENTS
# statuses in which a payment notice is still worth sending when the event is processed
UNPAID = frozenset({"past_due", "unpaid", "incomplete"})
MAX_EPOCH = 2 ** 32   # year 2106: a `created` beyond is no Stripe event's


async def store_event(registry_pool: Any, settings: Settings, event: stripe.Event,
                      raw: bytes) -> tuple[int | None, str]:
    """Store a verified event: (its inbox row id, or None when it was stored before; its type)."""
    event_id, event_type = event_key(getattr(event, "id", None), getattr(event, "type", None),
                                     "id", "type")
    created = getattr(event, "created", None)
    if created is not None and (not isinstance(created, int) or isinstance(created, bool)
                                or not 0 <= created <= MAX_EPOCH):
        raise WebhookMalformed("`created` must be a Unix time")
    occurred_at = datetime.fromtimestamp(created, UTC) if created is not None \
        else datetime.now(UTC)
    text = storable(raw, orjson.loads(raw))
    row_id: int | None = await rq(settings.sql_dir).insert_inbox_event(
        registry_pool, PROVIDER, event_id, event_type, occurred_at, text)
    return row_id, event_type


def subscription_of(event_type: str, obj: dict[str, Any]) -> str | None:
    """The id of the subscription an event is about (None: it is about none)."""
    if event_type in SUBSCRIPTION_EVENTS:
        found = obj.get("id")
    elif event_type in CHECKOUT_EVENTS:
        found = obj.get("subscription") if obj.get("mode") == "subscription" else None
    else:   # invoices: `parent.subscription_details` since API 2025-03-31, else `subscription`
        details = (obj.get("parent") or {}).get("subscription_details") or {}
        found = details.get("subscription") or obj.get("subscription")
    if isinstance(found, dict):   # expanded
        found = found.get("id")
    return found if isinstance(found, str) and found else None


@dataclass
class StripeInbox:
    """Stripe's stored events, processed with the Stripe adapter (the dispatcher's `Inbox`)."""

    registry_pool: Any
    lease: Any                     # the tenant supervisor's lease (owners' emails)
    settings: Settings
    stripe: StripeBilling
    emails: EmailSender
    metrics: Metrics | None = None

    async def process_by_id(self, row_id: int) -> Outcome | None:
        """Process one stored event now."""
        return await claim_and_process(self.registry_pool, self.settings, row_id,
                                       self.process_row)

    async def process_due(self, limit: int) -> int:
        """Process up to `limit` due events."""
        return await claim_and_process_due(self.registry_pool, self.settings, PROVIDER, limit,
                                           self.process_row)

    async def after_sweep(self) -> None:
        """Nothing: the carrier's dispatcher keeps the inbox gauges (every provider's)."""

    async def prune(self) -> None:
        """Nothing: the carrier's dispatcher prunes every provider's finished events."""

    async def process_row(self, row: Any) -> Outcome:
        """Process one claimed row and record how it ended."""
        try:
            async with asyncio.timeout(PROCESS_TIMEOUT):
                outcome = await self._process(row)
        except AppError as exc:   # Stripe unreachable, the church's database down: later
            outcome = Outcome("retry", exc.code, retry_in=backoff(row["attempts"]))
        except Exception as exc:   # a bug or the registry: keep the event, try again later
            log.error("stripe_webhook_processing_failed", event_id=row["event_id"],
                      exc_info=exc)
            outcome = Outcome("retry", f"error:{type(exc).__name__}"[:200],
                              retry_in=backoff(row["attempts"]))
        return await settle(self.registry_pool, self.settings, row, outcome, self.metrics)

    async def _process(self, row: Any) -> Outcome:
        event_type = row["event_type"]
        if event_type not in EVENT_TYPES:
            return Outcome("ignored", "unsupported_event_type")
        obj = (orjson.loads(row["payload"]).get("data") or {}).get("object") or {}
        sub_id = subscription_of(event_type, obj) if isinstance(obj, dict) else None
        if sub_id is None:
            return Outcome("ignored", "no_subscription")
        try:
            sub = await self.stripe.subscription(sub_id)
        except BillingNotFound:
            return Outcome("ignored", "subscription_not_found")
        tenant_id = await self._church_of(sub)
        if tenant_id is None:
            return Outcome("ignored", "unknown_customer")
        try:
            snapshot = Snapshot.of(sub)
        except ValueError as exc:
            log.warning("stripe_subscription_unusable", event_id=row["event_id"],
                        subscription=sub.id, error=str(exc))
            return Outcome("ignored", "subscription_unusable", tenant_id)
        async with self.registry_pool.acquire() as conn:
            changed = await apply_subscription(conn, self.settings, tenant_id, snapshot,
                                               row["event_id"])
        if event_type in ("invoice.payment_failed", "invoice.payment_action_required") \
                and sub.status in UNPAID:
            try:
                await self._tell_owners(tenant_id, event_type)
            except (TenantNotFound, TenantSuspended) as exc:   # nobody to tell there now
                log.warning("billing_payment_notice_skipped", tenant_id=str(tenant_id),
                            reason=exc.code)
        return Outcome("done", None if changed else "unchanged", tenant_id)

    async def _church_of(self, sub: Subscription) -> uuid.UUID | None:
        """The church holding the subscription's customer; else the one its metadata names,
        if that church has no customer yet."""
        q = rq(self.settings.sql_dir)
        found: uuid.UUID | None = await q.billing_tenant_for_customer(self.registry_pool,
                                                                      sub.customer)
        if found is not None or not sub.church_id:
            return found
        try:
            named = uuid.UUID(sub.church_id)
        except ValueError:
            return None
        row = await q.billing_state(self.registry_pool, named)
        if row is None or row["stripe_customer_id"] is not None:
            return None
        return named

    async def _tell_owners(self, tenant_id: uuid.UUID, event_type: str) -> None:
        link, grace = billing_link(self.settings), self.settings.billing_grace_days
        make: Callable[[str, str], Email]
        if event_type == "invoice.payment_action_required":
            def make(to: str, church: str) -> Email:
                return payment_action_email(to, church, link)
        else:
            def make(to: str, church: str) -> Email:
                return payment_failed_email(to, church, grace, link)
        sent = await notify_owners(self.lease, self.settings, self.emails, tenant_id, make)
        log.info("billing_payment_notice_sent", tenant_id=str(tenant_id), event_type=event_type,
                 owners=sent)

