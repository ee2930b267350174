"""Billing's errors: what a failed Stripe call means to our callers (AppError family)."""

from __future__ import annotations

from ..errors import AppError, ServiceUnavailable


class BillingUnavailable(ServiceUnavailable):
    """Stripe could not be reached, or answered 429/5xx after our retries (or refused our key:
    nothing the church can fix)."""

    code, title = "billing_unavailable", "Billing is unavailable right now; retry"


class BillingNotFound(AppError):
    """Stripe has no such object (a customer, subscription or price we named)."""

    status, code, title = 404, "billing_not_found", "Billing record not found"


class BillingRequestRefused(AppError):
    """Stripe refused the request as invalid (`stripe_code` says why)."""

    status, code, title = 400, "billing_request_refused", "Stripe refused the request"


class BillingConflict(AppError):
    """An idempotency key reused with other parameters, or an object in the wrong state."""

    status, code, title = 409, "billing_conflict", "Billing request conflicts with an earlier one"


class PaymentFailed(AppError):
    """A card was declined."""

    status, code, title = 402, "payment_failed", "The payment failed"


class PriceNotFound(AppError):
    """No active Stripe price holds a catalogue lookup key (run `ywm billing sync-catalogue`)."""

    status, code, title = 503, "price_not_found", "The plan's price is not set up at Stripe"
