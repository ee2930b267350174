"""Stripe objects as the API (version `API_VERSION`) shows them, built from request params."""

from __future__ import annotations

import time
from typing import Any

from .state import API_VERSION, DAY, new_id

INTERVAL_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
NO_TAX = {"enabled": False, "liability": None, "provider": None, "status": None}


def _base(prefix: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"id": new_id(prefix), "object": kind, "created": int(time.time()),
            "livemode": False, **fields}


def _metadata(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def customer(params: dict[str, Any]) -> dict[str, Any]:
    """A customer from POST /v1/customers."""
    return _base("cus", "customer", email=params.get("email"), name=params.get("name"),
                 description=params.get("description"), phone=params.get("phone"),
                 metadata=_metadata(params.get("metadata")), currency=None, balance=0,
                 delinquent=False, default_source=None, invoice_prefix="SIM",
                 invoice_settings={"default_payment_method": None, "footer": None,
                                   "custom_fields": None, "rendering_options": None},
                 preferred_locales=[], tax_exempt="none", test_clock=None)


def product(params: dict[str, Any]) -> dict[str, Any]:
    """A product from POST /v1/products (or a price's `product_data`)."""
    obj = _base("prod", "product", name=params.get("name"), active=True,
                description=params.get("description"), metadata=_metadata(params.get("metadata")),
                default_price=None, images=[], marketing_features=[], package_dimensions=None,
                shippable=None, statement_descriptor=None, tax_code=None, unit_label=None,
                updated=int(time.time()), url=None, type="service")
    if isinstance(params.get("id"), str) and params["id"]:
        obj["id"] = params["id"]
    return obj


def price(params: dict[str, Any], product_id: str) -> dict[str, Any]:
    """A price from POST /v1/prices."""
    recurring = params.get("recurring")
    rec = None
    if isinstance(recurring, dict):
        rec = {"interval": recurring.get("interval"),
               "interval_count": int(recurring.get("interval_count", 1)),
               "usage_type": "licensed", "meter": None, "trial_period_days": None}
    return _base("price", "price", active=True, billing_scheme="per_unit",
                 currency=str(params.get("currency", "")).lower(), custom_unit_amount=None,
                 lookup_key=params.get("lookup_key"), metadata=_metadata(params.get("metadata")),
                 nickname=params.get("nickname"), product=product_id, recurring=rec,
                 tax_behavior="unspecified", tiers_mode=None, transform_quantity=None,
                 type="recurring" if rec else "one_time",
                 unit_amount=int(params["unit_amount"]),
                 unit_amount_decimal=str(params["unit_amount"]))


def checkout_session(params: dict[str, Any], price_obj: dict[str, Any], quantity: int,
                     base_url: str) -> dict[str, Any]:
    """An open Checkout Session (mode subscription) with its hosted page's URL."""
    obj = _base("cs_test", "checkout.session", mode="subscription", status="open",
                payment_status="unpaid", client_reference_id=params.get("client_reference_id"),
                customer=params.get("customer"), customer_email=params.get("customer_email"),
                success_url=params.get("success_url"), cancel_url=params.get("cancel_url"),
                metadata=_metadata(params.get("metadata")), subscription=None, invoice=None,
                currency=price_obj["currency"], amount_subtotal=price_obj["unit_amount"] * quantity,
                amount_total=price_obj["unit_amount"] * quantity, ui_mode="hosted",
                expires_at=int(time.time()) + DAY, payment_method_types=["card"],
                allow_promotion_codes=None, locale=None, automatic_tax=dict(NO_TAX),
                custom_fields=[], shipping_options=[],
                custom_text={"after_submit": None, "shipping_address": None, "submit": None,
                             "terms_of_service_acceptance": None})
    obj["url"] = f"{base_url}/sim/checkout/{obj['id']}"
    # what the simulator needs to make the subscription when the page is completed
    obj["_line"] = {"price": price_obj["id"], "quantity": quantity}
    obj["_subscription_data"] = params.get("subscription_data") or {}
    return obj


def subscription_item(sub_id: str, price_obj: dict[str, Any], quantity: int, start: int,
                      end: int) -> dict[str, Any]:
    """One item of a subscription (the period lives on items since API 2025-03-31)."""
    rec = price_obj["recurring"] or {}
    plan = {"id": price_obj["id"], "object": "plan", "active": True,
            "amount": price_obj["unit_amount"], "amount_decimal": str(price_obj["unit_amount"]),
            "billing_scheme": "per_unit", "created": price_obj["created"],
            "currency": price_obj["currency"], "interval": rec.get("interval"),
            "interval_count": rec.get("interval_count", 1), "livemode": False, "metadata": {},
            "meter": None, "nickname": price_obj["nickname"], "product": price_obj["product"],
            "tiers_mode": None, "transform_usage": None, "trial_period_days": None,
            "usage_type": "licensed"}
    item = _base("si", "subscription_item", subscription=sub_id, price=price_obj, plan=plan,
                 quantity=quantity, metadata={}, current_period_start=start,
                 current_period_end=end, discounts=[], tax_rates=[], billing_thresholds=None)
    del item["livemode"]
    return item


def subscription(customer_id: str, price_obj: dict[str, Any], quantity: int, *, now: int,
                 trial_end: int | None, metadata: dict[str, str]) -> dict[str, Any]:
    """A new subscription, `trialing` until `trial_end` or `active` for a first period."""
    obj = _base("sub", "subscription", customer=customer_id, currency=price_obj["currency"],
                status="trialing" if trial_end else "active", metadata=metadata,
                cancel_at_period_end=False, cancel_at=None, canceled_at=None, ended_at=None,
                collection_method="charge_automatically", days_until_due=None,
                default_payment_method=None, latest_invoice=None, start_date=now,
                billing_cycle_anchor=trial_end or now, trial_start=now if trial_end else None,
                trial_end=trial_end, pending_update=None, test_clock=None,
                cancellation_details={"comment": None, "feedback": None, "reason": None},
                automatic_tax={"enabled": False, "disabled_reason": None, "liability": None},
                billing_mode={"type": "classic", "flexible": None, "updated_at": None},
                billing_schedules=[], discounts=[],
                invoice_settings={"account_tax_ids": None, "issuer": {"type": "self"}})
    end = trial_end or period_end(price_obj, now)
    obj["items"] = {"object": "list", "has_more": False, "total_count": 1,
                    "url": f"/v1/subscription_items?subscription={obj['id']}",
                    "data": [subscription_item(obj["id"], price_obj, quantity, now, end)]}
    return obj


def period_end(price_obj: dict[str, Any], start: int) -> int:
    """When a period of the price that starts at `start` ends."""
    rec = price_obj.get("recurring") or {"interval": "month", "interval_count": 1}
    return start + INTERVAL_DAYS.get(rec["interval"], 30) * int(rec["interval_count"]) * DAY


def invoice(sub: dict[str, Any], lines: list[dict[str, Any]], *, reason: str, start: int,
            end: int, base_url: str) -> dict[str, Any]:
    """A finalized subscription invoice about to be charged."""
    total = sum(int(line["amount"]) for line in lines)
    obj = _base("in", "invoice", customer=sub["customer"], currency=sub["currency"],
                status="open", amount_due=total, amount_paid=0, amount_remaining=total,
                subtotal=total, total=total, attempt_count=0, attempted=False,
                billing_reason=reason, collection_method="charge_automatically",
                period_start=start, period_end=end, next_payment_attempt=None,
                number=None, description=None, metadata={}, amount_overpaid=0,
                amount_shipping=0, automatic_tax=dict(NO_TAX), default_tax_rates=[],
                discounts=[], issuer={"type": "self"}, starting_balance=0,
                post_payment_credit_notes_amount=0, pre_payment_credit_notes_amount=0,
                payment_settings={"default_mandate": None, "payment_method_options": None,
                                  "payment_method_types": None},
                parent={"type": "subscription_details", "quote_details": None,
                        "subscription_details": {"subscription": sub["id"],
                                                 "metadata": dict(sub["metadata"])}},
                status_transitions={"finalized_at": int(time.time()), "paid_at": None,
                                    "marked_uncollectible_at": None, "voided_at": None})
    obj["number"] = f"SIM-{obj['id'][-6:].upper()}"
    obj["hosted_invoice_url"] = f"{base_url}/sim/invoices/{obj['id']}"
    obj["invoice_pdf"] = f"{base_url}/sim/invoices/{obj['id']}/pdf"
    obj["lines"] = {"object": "list", "has_more": False, "total_count": len(lines),
                    "url": f"/v1/invoices/{obj['id']}/lines", "data": lines}
    return obj


def invoice_line(amount: int, currency: str, description: str, *, price_id: str | None,
                 start: int, end: int) -> dict[str, Any]:
    """One line of an invoice."""
    line = _base("il", "line_item", amount=amount, currency=currency, description=description,
                 period={"start": start, "end": end}, quantity=1, metadata={},
                 discountable=True, discounts=[], subtotal=amount,
                 pricing={"type": "price_details", "unit_amount_decimal": str(amount),
                          "price_details": {"price": price_id, "product": None}})
    del line["created"]
    return line


def invoice_item(params: dict[str, Any], amount: int, currency: str,
                 price_id: str | None) -> dict[str, Any]:
    """A pending invoice item (added to the customer's next invoice)."""
    now = int(time.time())
    item = _base("ii", "invoiceitem", customer=params.get("customer"), amount=amount,
                 currency=currency, description=params.get("description"),
                 metadata=_metadata(params.get("metadata")), invoice=None, quantity=1,
                 quantity_decimal="1", proration=False, date=now,
                 period={"start": now, "end": now}, discountable=True, test_clock=None,
                 pricing={"type": "price_details", "unit_amount_decimal": str(amount),
                          "price_details": {"price": price_id, "product": None}})
    del item["created"]
    return item


def portal_session(customer_id: str, return_url: str | None, base_url: str) -> dict[str, Any]:
    """A billing-portal session with its page's URL."""
    obj = _base("bps", "billing_portal.session", customer=customer_id, return_url=return_url,
                configuration="bpc_sim", flow=None, locale=None, on_behalf_of=None)
    obj["url"] = f"{base_url}/sim/portal/{obj['id']}"
    return obj


def event(kind: str, obj: dict[str, Any],
          previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """An event about `obj` (a snapshot of it now)."""
    data: dict[str, Any] = {"object": public(obj)}
    if previous:
        data["previous_attributes"] = previous
    return _base("evt", "event", type=kind, api_version=API_VERSION, data=data,
                 pending_webhooks=1, request={"id": None, "idempotency_key": None})


def public(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without the simulator's own `_` fields."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}
