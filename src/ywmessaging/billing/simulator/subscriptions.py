"""The simulator's `/v1` subscriptions, invoices, invoice items and events."""

from __future__ import annotations

from aiohttp import web

from . import objects
from .forms import as_bool
from .lifecycle import account
from .replies import STRIPE_SIM_STATE, found, integer, missing, one, page, params, required


async def get_subscription(request: web.Request) -> web.Response:
    """GET /v1/subscriptions/{id}."""
    return one(request, found(request, "subscription", "subscription"))


async def list_subscriptions(request: web.Request) -> web.Response:
    """GET /v1/subscriptions[?customer=&status=] (canceled ones only when asked, as Stripe)."""
    p = params(request)
    status = p.get("status")
    rows = [s for s in request.app[STRIPE_SIM_STATE].newest_first("subscription")
            if (p.get("customer") is None or s["customer"] == p["customer"])
            and (s["status"] == status if status not in (None, "all")
                 else status == "all" or s["status"] != "canceled")]
    return page(request, rows, "/v1/subscriptions")


async def update_subscription(request: web.Request) -> web.Response:
    """POST /v1/subscriptions/{id} (`cancel_at_period_end`, `metadata`)."""
    sub, p = found(request, "subscription", "subscription"), params(request)
    acct = account(request)
    if as_bool(p.get("cancel_at_period_end")) is True:
        acct.cancel(sub, at_period_end=True)
    elif as_bool(p.get("cancel_at_period_end")) is False and sub["cancel_at_period_end"]:
        acct.change(sub, cancel_at_period_end=False, cancel_at=None, canceled_at=None)
    if isinstance(p.get("metadata"), dict):
        acct.change(sub, metadata={**sub["metadata"], **p["metadata"]})
    return one(request, sub)


async def cancel_subscription(request: web.Request) -> web.Response:
    """DELETE /v1/subscriptions/{id}: cancel now."""
    sub = found(request, "subscription", "subscription")
    return one(request, account(request).cancel(sub))


async def get_invoice(request: web.Request) -> web.Response:
    """GET /v1/invoices/{id}."""
    return one(request, found(request, "invoice", "invoice"))


async def list_invoices(request: web.Request) -> web.Response:
    """GET /v1/invoices[?customer=&subscription=&status=]."""
    p = params(request)
    rows = [i for i in request.app[STRIPE_SIM_STATE].newest_first("invoice")
            if (p.get("customer") is None or i["customer"] == p["customer"])
            and (p.get("status") is None or i["status"] == p["status"])
            and (p.get("subscription") is None
                 or i["parent"]["subscription_details"]["subscription"] == p["subscription"])]
    return page(request, rows, "/v1/invoices")


async def create_invoice_item(request: web.Request) -> web.Response:
    """POST /v1/invoiceitems (`amount`+`currency`, or `pricing[price]` of a one-time price)."""
    p, state = params(request), request.app[STRIPE_SIM_STATE]
    if not p.get("customer"):
        raise required("customer")
    if state.get("customer", str(p["customer"])) is None:
        raise missing("customer", str(p["customer"]), "customer")
    price_id = (p.get("pricing") or {}).get("price") if isinstance(p.get("pricing"), dict) \
        else None
    if price_id:
        price = state.get("price", str(price_id))
        if price is None:
            raise missing("price", str(price_id), "pricing[price]")
        amount, currency = int(price["unit_amount"]), str(price["currency"])
    else:
        if p.get("currency") in (None, ""):
            raise required("currency")
        amount, currency = integer(p, "amount"), str(p["currency"]).lower()
    item = objects.invoice_item(p, amount, currency, price_id)
    return one(request, state.put("invoiceitem", item))


async def list_invoice_items(request: web.Request) -> web.Response:
    """GET /v1/invoiceitems[?customer=&pending=]."""
    p = params(request)
    pending = as_bool(p.get("pending"))
    rows = [i for i in request.app[STRIPE_SIM_STATE].newest_first("invoiceitem")
            if (p.get("customer") is None or i["customer"] == p["customer"])
            and (pending is None or (i["invoice"] is None) == pending)]
    return page(request, rows, "/v1/invoiceitems")


async def get_event(request: web.Request) -> web.Response:
    """GET /v1/events/{id}."""
    return one(request, found(request, "event", "event"))


async def list_events(request: web.Request) -> web.Response:
    """GET /v1/events[?type=]."""
    kind = params(request).get("type")
    rows = [e for e in request.app[STRIPE_SIM_STATE].newest_first("event")
            if kind is None or e["type"] == kind]
    return page(request, rows, "/v1/events")


def add_subscription_routes(app: web.Application) -> None:
    """Subscriptions, invoices, invoice items, events."""
    r = app.router
    r.add_get("/v1/subscriptions", list_subscriptions)
    r.add_get("/v1/subscriptions/{id}", get_subscription)
    r.add_post("/v1/subscriptions/{id}", update_subscription)
    r.add_delete("/v1/subscriptions/{id}", cancel_subscription)
    r.add_get("/v1/invoices", list_invoices)
    r.add_get("/v1/invoices/{id}", get_invoice)
    r.add_post("/v1/invoiceitems", create_invoice_item)
    r.add_get("/v1/invoiceitems", list_invoice_items)
    r.add_get("/v1/events", list_events)
    r.add_get("/v1/events/{id}", get_event)
