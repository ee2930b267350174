"""What the Stripe adapter hands back: small frozen records read from Stripe's objects (only
the fields billing uses; API version of the pinned `stripe` library, where a subscription's
period lives on its items)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def time_of(value: Any) -> datetime | None:
    """A Stripe time (epoch seconds) in UTC; None stays None."""
    return None if value is None else datetime.fromtimestamp(int(value), UTC)


def _get(obj: Any, name: str) -> Any:
    """A field of a StripeObject or dict, None when absent."""
    try:
        return obj[name]
    except (KeyError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class Price:
    """A price: its id, lookup key, amount (cents), currency, interval (None: one-time)."""

    id: str
    lookup_key: str | None
    unit_amount: int
    currency: str
    interval: str | None
    product: str

    @classmethod
    def of(cls, obj: Any) -> Price:
        """From a Stripe price object."""
        recurring = _get(obj, "recurring")
        product = _get(obj, "product")
        return cls(id=str(obj["id"]), lookup_key=_get(obj, "lookup_key"),
                   unit_amount=int(_get(obj, "unit_amount") or 0),
                   currency=str(_get(obj, "currency")),
                   interval=None if not recurring else str(recurring["interval"]),
                   product=str(product if isinstance(product, str) else _get(product, "id")))


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription as billing needs it."""

    id: str
    customer: str
    status: str                     # trialing active past_due unpaid canceled incomplete …
    price_id: str | None
    lookup_key: str | None
    interval: str | None            # the price's: month, year
    current_period_end: datetime | None
    trial_end: datetime | None
    cancel_at_period_end: bool
    church_id: str | None           # from metadata: check it against the registry
    created: datetime | None

    @classmethod
    def of(cls, obj: Any) -> Subscription:
        """From a Stripe subscription object."""
        items = _get(_get(obj, "items"), "data") or []
        item = items[0] if items else None
        price = _get(item, "price")
        customer = _get(obj, "customer")
        return cls(id=str(obj["id"]),
                   customer=str(customer if isinstance(customer, str) else _get(customer, "id")),
                   status=str(obj["status"]),
                   price_id=None if price is None else str(_get(price, "id")),
                   lookup_key=_get(price, "lookup_key"),
                   interval=_get(_get(price, "recurring"), "interval"),
                   current_period_end=time_of(_get(item, "current_period_end")
                                            or _get(obj, "current_period_end")),
                   trial_end=time_of(_get(obj, "trial_end")),
                   cancel_at_period_end=bool(_get(obj, "cancel_at_period_end")),
                   church_id=_get(_get(obj, "metadata"), "church_id"),
                   created=time_of(_get(obj, "created")))


@dataclass(frozen=True, slots=True)
class Invoice:
    """An invoice as a church's billing page lists it."""

    id: str
    number: str | None
    status: str
    amount_due: int
    amount_paid: int
    currency: str
    created: datetime | None
    period_start: datetime | None
    period_end: datetime | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None

    @classmethod
    def of(cls, obj: Any) -> Invoice:
        """From a Stripe invoice object."""
        return cls(id=str(obj["id"]), number=_get(obj, "number"), status=str(obj["status"]),
                   amount_due=int(_get(obj, "amount_due") or 0),
                   amount_paid=int(_get(obj, "amount_paid") or 0),
                   currency=str(_get(obj, "currency")), created=time_of(_get(obj, "created")),
                   period_start=time_of(_get(obj, "period_start")),
                   period_end=time_of(_get(obj, "period_end")),
                   hosted_invoice_url=_get(obj, "hosted_invoice_url"),
                   invoice_pdf=_get(obj, "invoice_pdf"))


@dataclass(frozen=True, slots=True)
class InvoicePage:
    """One page of invoices; `next_cursor` is the `starting_after` of the next (None: last)."""

    invoices: tuple[Invoice, ...]
    has_more: bool
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    """A Checkout Session: its id, hosted page, status (`open`, `complete`, `expired`) and
    when it expires."""

    id: str
    url: str
    status: str = "open"
    expires_at: datetime | None = None
