"""The simulator's Stripe REST API (`/v1/*`): customers (with search), products, prices,
Checkout and billing-portal sessions, subscriptions, invoices, invoice items, events."""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from . import objects
from .forms import as_bool, as_list
from .lifecycle import Account
from .replies import (
    STRIPE_SIM_SENDER,
    STRIPE_SIM_STATE,
    StripeError,
    missing,
    one,
    page,
    params,
    required,
)

_SEARCH = re.compile(r"""^\s*(metadata\[['"](?P<key>[^'"]+)['"]\]|(?P<field>email|name))\s*:\s*"""
                     r"""['"](?P<value>[^'"]*)['"]\s*$""")


def account(request: web.Request) -> Account:
    """The account the request acts on."""
    return Account(request.app[STRIPE_SIM_STATE], request.app[STRIPE_SIM_SENDER])


def _found(request: web.Request, kind: str, label: str) -> dict[str, Any]:
    obj_id = request.match_info["id"]
    obj = request.app[STRIPE_SIM_STATE].get(kind, obj_id)
    if obj is None:
        raise missing(label, obj_id)
    return obj


def _int(p: dict[str, Any], name: str) -> int:
    try:
        return int(p[name])
    except (KeyError, TypeError, ValueError):
        raise StripeError(400, f"Invalid integer: {p.get(name)}", param=name) from None


async def create_customer(request: web.Request) -> web.Response:
    """POST /v1/customers."""
    state = request.app[STRIPE_SIM_STATE]
    return one(request, state.put("customer", objects.customer(params(request))))


async def get_customer(request: web.Request) -> web.Response:
    """GET /v1/customers/{id}."""
    return one(request, _found(request, "customer", "customer"))


async def list_customers(request: web.Request) -> web.Response:
    """GET /v1/customers[?email=]."""
    email = params(request).get("email")
    rows = [c for c in request.app[STRIPE_SIM_STATE].newest_first("customer")
            if email is None or c["email"] == email]
    return page(request, rows, "/v1/customers")


async def search_customers(request: web.Request) -> web.Response:
    """GET /v1/customers/search?query= (one clause: `metadata['k']:'v'`, `email:'…'`,
    `name:'…'`)."""
    query = str(params(request).get("query") or "")
    match = _SEARCH.match(query)
    if match is None:
        raise StripeError(400, f"Invalid search query: {query!r}", code="search_query_invalid",
                          param="query")
    value = match["value"]
    rows = [c for c in request.app[STRIPE_SIM_STATE].newest_first("customer")
            if (c["metadata"].get(match["key"]) == value if match["key"]
                else c.get(match["field"]) == value)]
    response = page(request, rows, "/v1/customers/search")
    return _as_search(response)


def _as_search(response: web.Response) -> web.Response:
    assert isinstance(response.body, bytes)
    doc = orjson.loads(response.body)
    doc.update(object="search_result", next_page=None, total_count=None)
    response.body = orjson.dumps(doc)
    return response


async def create_product(request: web.Request) -> web.Response:
    """POST /v1/products (with an optional `id` of our choosing)."""
    p, state = params(request), request.app[STRIPE_SIM_STATE]
    if not p.get("name"):
        raise required("name")
    if p.get("id") and state.get("product", p["id"]) is not None:
        raise StripeError(400, "Product already exists.", code="resource_already_exists",
                          param="id")
    return one(request, state.put("product", objects.product(p)))


async def get_product(request: web.Request) -> web.Response:
    """GET /v1/products/{id}."""
    return one(request, _found(request, "product", "product"))


async def list_products(request: web.Request) -> web.Response:
    """GET /v1/products."""
    return page(request, request.app[STRIPE_SIM_STATE].newest_first("product"), "/v1/products")


async def create_price(request: web.Request) -> web.Response:
    """POST /v1/prices (`product` or `product_data`; `lookup_key`, `transfer_lookup_key`)."""
    p, state = params(request), request.app[STRIPE_SIM_STATE]
    for name in ("currency", "unit_amount"):
        if p.get(name) in (None, ""):
            raise required(name)
    _int(p, "unit_amount")
    if isinstance(p.get("product_data"), dict):
        product_id = state.put("product", objects.product(p["product_data"]))["id"]
    elif p.get("product"):
        product_id = str(p["product"])
        if state.get("product", product_id) is None:
            raise missing("product", product_id, "product")
    else:
        raise required("product")
    key = p.get("lookup_key")
    holder = state.find_price(str(key)) if key else None
    if holder is not None:
        if not as_bool(p.get("transfer_lookup_key")):
            raise StripeError(400, f"A price (`{holder['id']}`) already uses that lookup key.",
                              param="lookup_key")
        holder["lookup_key"] = None
    return one(request, state.put("price", objects.price(p, product_id)))


async def get_price(request: web.Request) -> web.Response:
    """GET /v1/prices/{id}."""
    return one(request, _found(request, "price", "price"))


async def list_prices(request: web.Request) -> web.Response:
    """GET /v1/prices[?lookup_keys[]=&active=&product=&type=]."""
    p = params(request)
    keys = [str(k) for k in as_list(p.get("lookup_keys"))]
    active, product, kind = as_bool(p.get("active")), p.get("product"), p.get("type")
    rows = [x for x in request.app[STRIPE_SIM_STATE].newest_first("price")
            if (not keys or x["lookup_key"] in keys)
            and (active is None or x["active"] == active)
            and (product is None or x["product"] == product)
            and (kind is None or x["type"] == kind)]
    return page(request, rows, "/v1/prices")


async def create_checkout_session(request: web.Request) -> web.Response:
    """POST /v1/checkout/sessions (mode `subscription`, one line item)."""
    p, state = params(request), request.app[STRIPE_SIM_STATE]
    if p.get("mode") != "subscription":
        raise StripeError(400, "The simulator supports `mode=subscription` only.", param="mode")
    if not p.get("success_url"):
        raise required("success_url")
    lines = as_list(p.get("line_items"))
    if len(lines) != 1 or not isinstance(lines[0], dict) or not lines[0].get("price"):
        raise required("line_items[0][price]")
    price = state.get("price", str(lines[0]["price"]))
    if price is None:
        raise missing("price", str(lines[0]["price"]), "line_items[0][price]")
    if price["type"] != "recurring":
        raise StripeError(400, "You must provide at least one recurring price in "
                          "`subscription` mode when using prices.", param="line_items")
    if p.get("customer") and state.get("customer", str(p["customer"])) is None:
        raise missing("customer", str(p["customer"]), "customer")
    quantity = _int(lines[0], "quantity") if "quantity" in lines[0] else 1
    session = objects.checkout_session(p, price, quantity, state.base_url)
    return one(request, state.put("checkout.session", session))


async def get_checkout_session(request: web.Request) -> web.Response:
    """GET /v1/checkout/sessions/{id}."""
    return one(request, _found(request, "checkout.session", "checkout.session"))


async def create_portal_session(request: web.Request) -> web.Response:
    """POST /v1/billing_portal/sessions."""
    p, state = params(request), request.app[STRIPE_SIM_STATE]
    if not p.get("customer"):
        raise required("customer")
    if state.get("customer", str(p["customer"])) is None:
        raise missing("customer", str(p["customer"]), "customer")
    session = objects.portal_session(str(p["customer"]), p.get("return_url"), state.base_url)
    return one(request, state.put("billing_portal.session", session))


async def get_subscription(request: web.Request) -> web.Response:
    """GET /v1/subscriptions/{id}."""
    return one(request, _found(request, "subscription", "subscription"))


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
    sub, p = _found(request, "subscription", "subscription"), params(request)
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
    sub = _found(request, "subscription", "subscription")
    return one(request, account(request).cancel(sub))


async def get_invoice(request: web.Request) -> web.Response:
    """GET /v1/invoices/{id}."""
    return one(request, _found(request, "invoice", "invoice"))


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
        amount, currency = _int(p, "amount"), str(p["currency"]).lower()
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
    return one(request, _found(request, "event", "event"))


async def list_events(request: web.Request) -> web.Response:
    """GET /v1/events[?type=]."""
    kind = params(request).get("type")
    rows = [e for e in request.app[STRIPE_SIM_STATE].newest_first("event")
            if kind is None or e["type"] == kind]
    return page(request, rows, "/v1/events")


def add_api_routes(app: web.Application) -> None:
    """The Stripe-compatible routes."""
    r = app.router
    r.add_post("/v1/customers", create_customer)
    r.add_get("/v1/customers", list_customers)
    r.add_get("/v1/customers/search", search_customers)
    r.add_get("/v1/customers/{id}", get_customer)
    r.add_post("/v1/products", create_product)
    r.add_get("/v1/products", list_products)
    r.add_get("/v1/products/{id}", get_product)
    r.add_post("/v1/prices", create_price)
    r.add_get("/v1/prices", list_prices)
    r.add_get("/v1/prices/{id}", get_price)
    r.add_post("/v1/checkout/sessions", create_checkout_session)
    r.add_get("/v1/checkout/sessions/{id}", get_checkout_session)
    r.add_post("/v1/billing_portal/sessions", create_portal_session)
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
