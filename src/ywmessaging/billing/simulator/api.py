"""The simulator's Stripe REST API (`/v1/*`): customers (with search), products, prices,
Checkout and billing-portal sessions; the route table (subscriptions, invoices, invoice items
and events live in `subscriptions.py`)."""

from __future__ import annotations

import re

import orjson
from aiohttp import web

from . import objects
from .forms import as_bool, as_list
from .replies import (
    STRIPE_SIM_STATE,
    StripeError,
    found,
    integer,
    missing,
    one,
    page,
    params,
    required,
)
from .state import DAY
from .subscriptions import add_subscription_routes

_SEARCH = re.compile(r"""^\s*(metadata\[['"](?P<key>[^'"]+)['"]\]|(?P<field>email|name))\s*:\s*"""
                     r"""['"](?P<value>[^'"]*)['"]\s*$""")


async def create_customer(request: web.Request) -> web.Response:
    """POST /v1/customers."""
    state = request.app[STRIPE_SIM_STATE]
    return one(request, state.put("customer", objects.customer(params(request))))


async def get_customer(request: web.Request) -> web.Response:
    """GET /v1/customers/{id}."""
    return one(request, found(request, "customer", "customer"))


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
    return one(request, found(request, "product", "product"))


async def list_products(request: web.Request) -> web.Response:
    """GET /v1/products."""
    return page(request, request.app[STRIPE_SIM_STATE].newest_first("product"), "/v1/products")


async def create_price(request: web.Request) -> web.Response:
    """POST /v1/prices (`product` or `product_data`; `lookup_key`, `transfer_lookup_key`)."""
    p, state = params(request), request.app[STRIPE_SIM_STATE]
    for name in ("currency", "unit_amount"):
        if p.get(name) in (None, ""):
            raise required(name)
    integer(p, "unit_amount")
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
    return one(request, found(request, "price", "price"))


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
    quantity = integer(lines[0], "quantity") if "quantity" in lines[0] else 1
    trial_end = (p.get("subscription_data") or {}).get("trial_end") \
        if isinstance(p.get("subscription_data"), dict) else None
    if trial_end not in (None, "", "now") and integer(
            p["subscription_data"], "trial_end") < state.now() + 2 * DAY:
        raise StripeError(400, "The `trial_end` date has to be at least 2 days in the future.",
                          param="subscription_data[trial_end]")
    session = objects.checkout_session(p, price, quantity, state.base_url)
    return one(request, state.put("checkout.session", session))


async def get_checkout_session(request: web.Request) -> web.Response:
    """GET /v1/checkout/sessions/{id}."""
    return one(request, found(request, "checkout.session", "checkout.session"))


async def create_portal_session(request: web.Request) -> web.Response:
    """POST /v1/billing_portal/sessions."""
    p, state = params(request), request.app[STRIPE_SIM_STATE]
    if not p.get("customer"):
        raise required("customer")
    if state.get("customer", str(p["customer"])) is None:
        raise missing("customer", str(p["customer"]), "customer")
    session = objects.portal_session(str(p["customer"]), p.get("return_url"), state.base_url)
    return one(request, state.put("billing_portal.session", session))


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
    add_subscription_routes(app)
