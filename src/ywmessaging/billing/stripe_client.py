"""The Stripe adapter: what billing asks of Stripe, through the official library's async
client (`StripeClient`, `*_async` methods over aiohttp), with Stripe's failures turned into
our AppErrors (503 `billing_unavailable` after retries; a 4xx that says what was refused)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import aiohttp
import stripe
import structlog

from ..config import Settings
from ..messaging.signature import (
    WebhookKeyMissing,
    WebhookSignatureInvalid,
    WebhookTimestampInvalid,
)
from ..messaging.webhooks import WebhookMalformed
from .catalogue import NUMBER_SETUP_LOOKUP_KEY
from .errors import (
    BillingConflict,
    BillingNotFound,
    BillingRequestRefused,
    BillingUnavailable,
    PaymentFailed,
    PriceNotFound,
)
from .stripe_types import CheckoutSession, Invoice, InvoicePage, Price, Subscription, time_of

T = TypeVar("T")
WEBHOOK_TOLERANCE = 300      # seconds, Stripe's default
log = structlog.get_logger(__name__)


class StripeBilling:
    """One per process: a `StripeClient` on its own aiohttp session; `close()` when done."""

    def __init__(self, settings: Settings) -> None:
        self._http = stripe.AIOHTTPClient(
            timeout=aiohttp.ClientTimeout(total=settings.stripe_timeout))
        self._client = stripe.StripeClient(
            settings.stripe_api_key, http_client=self._http,
            base_addresses={"api": settings.stripe_api_base.rstrip("/")},
            max_network_retries=settings.stripe_max_retries)
        self._retries = settings.stripe_max_retries
        self._secrets = settings.stripe_webhook_secrets()

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run one Stripe call; 429 is retried here (the library retries connection errors,
        409 and 5xx itself), then every Stripe error becomes an AppError."""
        for attempt in range(self._retries + 1):
            try:
                return await call()
            except stripe.RateLimitError as exc:
                if attempt >= self._retries:
                    raise _translate(what, exc) from exc
                await asyncio.sleep(min(5.0, 0.5 * 2 ** attempt) * (0.5 + random.random() / 2))
            except stripe.StripeError as exc:
                raise _translate(what, exc) from exc
        raise AssertionError("unreachable")

    async def prices(self, lookup_keys: Sequence[str]) -> dict[str, Price]:
        """The active prices holding these lookup keys, by key (missing keys are absent)."""
        found: dict[str, Price] = {}
        keys = list(dict.fromkeys(lookup_keys))
        for start in range(0, len(keys), 10):      # Stripe takes at most 10 keys per list
            params: dict[str, Any] = {"lookup_keys": keys[start:start + 10], "active": True,
                                      "limit": 100}
            page = await self._call("list prices", lambda params=params: (
                self._client.v1.prices.list_async(params=params)))  # type: ignore[misc]
            for obj in page.data:
                price = Price.of(obj)
                if price.lookup_key:
                    found[price.lookup_key] = price
        return found

    async def price(self, lookup_key: str) -> Price:
        """The active price holding `lookup_key`, or 503 `price_not_found` (the catalogue was
        never synced: `ywm billing sync-catalogue`)."""
        found = (await self.prices([lookup_key])).get(lookup_key)
        if found is None:
            raise PriceNotFound(f"no active Stripe price has the lookup key {lookup_key!r}")
        return found

    async def ensure_customer(self, church_id: str, *, name: str, email: str | None = None,
                              customer_id: str | None = None) -> str:
        """The church's Stripe customer id: `customer_id` if Stripe still has it, else the one
        whose metadata names the church, else a new one (idempotent per church)."""
        if customer_id:
            try:
                await self._call("retrieve customer", lambda: (
                    self._client.v1.customers.retrieve_async(customer_id)))
                return customer_id
            except BillingNotFound:
                pass
        query = f"metadata['church_id']:'{church_id}'"
        found = await self._call("search customers", lambda: (
            self._client.v1.customers.search_async(params={"query": query, "limit": 1})))
        if found.data:
            return str(found.data[0].id)
        params: dict[str, Any] = {"name": name, "metadata": {"church_id": church_id}}
        if email:
            params["email"] = email
        created = await self._call("create customer", lambda: (
            self._client.v1.customers.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"ywm-customer-{church_id}"})))
        return str(created.id)

    async def create_checkout(self, *, church_id: str, customer_id: str, price_id: str,
                              success_url: str, cancel_url: str,
                              trial_end: datetime | None = None,
                              idempotency_key: str | None = None) -> CheckoutSession:
        """A Checkout Session (mode subscription) for one price; its hosted page's URL.
        `trial_end` (at least two days ahead, as Stripe requires) keeps what is left of the
        church's trial."""
        sub_data: dict[str, Any] = {"metadata": {"church_id": church_id}}
        if trial_end is not None:
            sub_data["trial_end"] = int(trial_end.timestamp())
        params: dict[str, Any] = {
            "mode": "subscription", "customer": customer_id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "success_url": success_url, "cancel_url": cancel_url,
            "client_reference_id": church_id, "metadata": {"church_id": church_id},
            "subscription_data": sub_data}
        options: Any = {"idempotency_key": idempotency_key} if idempotency_key else {}
        session = await self._call("create checkout session", lambda: (
            self._client.v1.checkout.sessions.create_async(
                params=params, options=options)))  # type: ignore[arg-type]
        if not session.url:
            raise BillingUnavailable("Stripe returned a Checkout Session without a URL")
        return CheckoutSession(id=str(session.id), url=str(session.url),
                               status=str(session.status or "open"),
                               expires_at=time_of(session.expires_at))

    async def checkout_status(self, session_id: str) -> str:
        """A Checkout Session's status now: `open`, `complete` or `expired`."""
        session = await self._call("retrieve checkout session", lambda: (
            self._client.v1.checkout.sessions.retrieve_async(session_id)))
        return str(session.status)

    async def create_portal(self, customer_id: str, return_url: str) -> str:
        """A billing-portal session's URL for the customer."""
        session = await self._call("create portal session", lambda: (
            self._client.v1.billing_portal.sessions.create_async(
                params={"customer": customer_id, "return_url": return_url})))
        return str(session.url)

    async def subscription(self, subscription_id: str) -> Subscription:
        """The subscription as Stripe has it now (webhooks refetch it: never trust an old
        event's copy)."""
        obj = await self._call("retrieve subscription", lambda: (
            self._client.v1.subscriptions.retrieve_async(subscription_id)))
        return Subscription.of(obj)

    async def cancel_subscription(self, subscription_id: str) -> bool:
        """Cancel a subscription now (no proration, no final invoice); False when Stripe has no
        such subscription or it was already canceled (safe to call again)."""
        try:
            obj = await self._call("cancel subscription", lambda: (
                self._client.v1.subscriptions.cancel_async(subscription_id)))
        except BillingNotFound:
            return False
        except BillingRequestRefused:   # already canceled: Stripe refuses a second cancel
            sub = await self.subscription(subscription_id)
            if sub.status in ("canceled", "incomplete_expired"):
                return False
            raise
        return str(obj.status) == "canceled"

    async def invoices(self, customer_id: str, *, limit: int = 10,
                       starting_after: str | None = None) -> InvoicePage:
        """One page of the customer's invoices, newest first; `next_cursor` for the next."""
        params: dict[str, Any] = {"customer": customer_id, "limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        page = await self._call("list invoices", lambda: (
            self._client.v1.invoices.list_async(params=params)))  # type: ignore[arg-type]
        items = tuple(Invoice.of(obj) for obj in page.data)
        more = bool(page.has_more) and bool(items)
        return InvoicePage(items, more, items[-1].id if more else None)

    async def add_invoice_item(self, customer_id: str, *, price_id: str, description: str,
                               idempotency_key: str,
                               metadata: dict[str, str] | None = None) -> str:
        """A one-time charge on the customer's next invoice (the number setup fee); its id.
        The key makes a retried call charge once."""
        params: dict[str, Any] = {"customer": customer_id, "pricing": {"price": price_id},
                                  "description": description, "metadata": metadata or {}}
        item = await self._call("create invoice item", lambda: (
            self._client.v1.invoice_items.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key})))
        return str(item.id)

    async def add_number_setup_fee(self, customer_id: str, *, number: str,
                                   order_id: str) -> str:
        """The number setup fee (catalogue price `number_setup`) on the customer's next invoice,
        once per carrier order however often it is asked; the invoice item's id."""
        fee = await self.price(NUMBER_SETUP_LOOKUP_KEY)
        return await self.add_invoice_item(
            customer_id, price_id=fee.id, description=f"Setup of {number}",
            idempotency_key=f"ywm-number-setup-{order_id}",
            metadata={"number": number, "order_id": order_id})

    async def ensure_product(self, product_id: str, name: str) -> bool:
        """Make the product `product_id` unless Stripe has it; whether it was made."""
        try:
            await self._call("retrieve product", lambda: (
                self._client.v1.products.retrieve_async(product_id)))
            return False
        except BillingNotFound:
            pass
        await self._call("create product", lambda: self._client.v1.products.create_async(
            params={"id": product_id, "name": name, "metadata": {"source": "ywm"}},
            options={"idempotency_key": f"ywm-product-{product_id}"}))
        return True

    async def create_price(self, *, product_id: str, lookup_key: str, unit_amount: int,
                           currency: str, interval: str | None) -> Price:
        """A new price that takes `lookup_key` over from any price holding it (prices never
        change their amount: a new amount is a new price)."""
        params: dict[str, Any] = {"product": product_id, "lookup_key": lookup_key,
                                  "transfer_lookup_key": True, "unit_amount": unit_amount,
                                  "currency": currency, "nickname": lookup_key}
        if interval is not None:
            params["recurring"] = {"interval": interval}
        key = f"ywm-price-{lookup_key}-{unit_amount}-{currency}-{interval or 'once'}"
        obj = await self._call("create price", lambda: self._client.v1.prices.create_async(
            params=params, options={"idempotency_key": key}))  # type: ignore[arg-type]
        return Price.of(obj)

    def verify_webhook(self, payload: bytes, signature: str | None) -> stripe.Event:
        """The event of a webhook whose `Stripe-Signature` one of our endpoint secrets made
        within 300 s; else a 401 AppError (nothing about the body is trusted before); 400
        `webhook_malformed` for a signed body that is not JSON."""
        if not self._secrets:
            raise WebhookKeyMissing()
        if not signature:
            raise WebhookSignatureInvalid()
        text = payload.decode("utf-8", errors="replace")
        stale = False
        for secret in self._secrets:
            try:
                event: stripe.Event = stripe.Webhook.construct_event(
                    text, signature, secret, tolerance=WEBHOOK_TOLERANCE)
                return event
            except stripe.SignatureVerificationError as exc:
                stale = stale or "tolerance" in str(exc)
            except ValueError:   # signed by us, but not JSON
                raise WebhookMalformed("the signed body is not JSON") from None
        raise WebhookTimestampInvalid() if stale else WebhookSignatureInvalid()


def _translate(what: str, exc: stripe.StripeError) -> Exception:
    """A Stripe failure as our error (logged once with Stripe's own code and request id)."""
    status, code = exc.http_status, getattr(exc, "code", None)
    unavailable = status is None or status >= 500 or status in (401, 403, 429)
    if status != 404:   # a missing object is the caller's to judge (often expected)
        (log.warning if unavailable else log.info)(
            "stripe_call_failed", call=what, http_status=status, stripe_code=code,
            stripe_error=type(exc).__name__, request_id=exc.request_id)
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError | stripe.APIError):
        return BillingUnavailable(f"Stripe did not answer ({what})",
                                  headers={"Retry-After": "5"})
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return BillingUnavailable(f"Stripe refused our API key ({what})")
    if isinstance(exc, stripe.IdempotencyError):
        return BillingConflict(f"{what}: idempotency key reused with other parameters")
    if isinstance(exc, stripe.CardError):
        return PaymentFailed(exc.user_message or "the card was declined", stripe_code=code)
    if status == 404 or code == "resource_missing":
        return BillingNotFound(f"{what}: {exc.user_message or 'not found'}", stripe_code=code)
    if status is not None and status >= 500:
        return BillingUnavailable(f"Stripe failed ({what})", headers={"Retry-After": "5"})
    return BillingRequestRefused(f"{what}: {exc.user_message or 'refused'}", stripe_code=code)

