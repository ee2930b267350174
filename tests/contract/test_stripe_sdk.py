"""Contract test: the Stripe simulator as the official `stripe` library sees it.

The library (pinned in pyproject.toml) drives the simulator over real HTTP with its async
client (`StripeClient`, `*_async` methods over its aiohttp client), for every call our adapter
(`billing/stripe_client.py`) makes: prices listed by `lookup_keys[]` (and paged by the
library's own auto-pager), products retrieved and created with our id, prices created with
`transfer_lookup_key`, customers retrieved, searched by metadata and created with an
idempotency key, Checkout Sessions (mode subscription, trial) and billing-portal sessions
created, subscriptions retrieved, invoices listed page by page, invoice items created. Each
answer must come back as the library's class for its `object`, with no field the library's
class does not declare (a misspelt field in the simulator) and every field it declares as
always present. Errors must become the library's own exceptions. Every webhook the simulator
sends is verified with the library's `Webhook.construct_event`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import stripe
from aiohttp import web

from ywmessaging.billing.simulator import RunningStripeSim, start_stripe_sim

API_KEY = "sk_test_contract"


def _declared(cls: type) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        found.update(getattr(klass, "__annotations__", {}))
    return {k: v for k, v in found.items() if not k.startswith("_") and k != "OBJECT_NAME"}


def _problems(obj: Any, path: str = "") -> list[str]:
    """Fields a StripeObject's class does not declare, or declares as always present but
    missing, anywhere inside it (lists and nested objects included)."""
    found: list[str] = []
    if isinstance(obj, stripe.ListObject | stripe.SearchResultObject):
        for i, item in enumerate(obj.data):
            found += _problems(item, f"{path}.data[{i}]")
        return found
    if not isinstance(obj, stripe.StripeObject):
        return found
    cls, fields = type(obj), obj.to_dict(recursive=False)
    if cls is not stripe.StripeObject and "OBJECT_NAME" in _declared_all(cls):
        declared = _declared(cls)
        found += [f"{path}.{k} (unknown to {cls.__name__})" for k in fields if k not in declared]
        found += [f"{path}.{k} (missing)" for k, hint in declared.items()
                  if k not in fields and "Optional" not in str(hint) and "None" not in str(hint)]
    for key, value in fields.items():
        if isinstance(value, stripe.StripeObject):
            found += _problems(value, f"{path}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                found += _problems(item, f"{path}.{key}[{i}]")
    return found


def _declared_all(cls: type) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        found.update(getattr(klass, "__annotations__", {}))
    return found


def _exact(obj: Any, cls: type) -> None:
    assert type(obj) is cls, f"{type(obj).__name__} instead of {cls.__name__}"
    assert _problems(obj) == []


class Hook:
    """A webhook endpoint that records every delivery."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.read(), request.headers["Stripe-Signature"]))
        return web.Response(status=200)


@pytest.fixture
async def sim() -> AsyncIterator[RunningStripeSim]:
    running = await start_stripe_sim(api_key=API_KEY, webhook_retry_delays=(0.05,))
    yield running
    await running.stop()


@pytest.fixture
async def hook(sim: RunningStripeSim) -> AsyncIterator[Hook]:
    rec = Hook()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    sim.set_webhook_url(f"http://{host}:{port}/hook")
    yield rec
    await runner.cleanup()


@pytest.fixture
async def client(sim: RunningStripeSim) -> AsyncIterator[stripe.StripeClient]:
    http = stripe.AIOHTTPClient()
    yield stripe.StripeClient(API_KEY, http_client=http, base_addresses={"api": sim.base_url},
                              max_network_retries=0)
    await http.close_async()


async def _catalogue(client: stripe.StripeClient) -> stripe.Price:
    product = await client.v1.products.create_async(
        params={"id": "ywm_starter", "name": "Starter", "metadata": {"source": "ywm"}},
        options={"idempotency_key": "ywm-product-ywm_starter"})
    _exact(product, stripe.Product)
    assert product.id == "ywm_starter"
    _exact(await client.v1.products.retrieve_async("ywm_starter"), stripe.Product)
    price = await client.v1.prices.create_async(params={
        "product": "ywm_starter", "lookup_key": "starter_monthly", "transfer_lookup_key": True,
        "unit_amount": 4900, "currency": "usd", "nickname": "starter_monthly",
        "recurring": {"interval": "month"}}, options={"idempotency_key": "price-1"})
    _exact(price, stripe.Price)
    assert price.recurring is not None and price.recurring.interval == "month"
    return price


async def _checkout(sim: RunningStripeSim, client: stripe.StripeClient, customer: str,
                    price: str, **sub_data: Any) -> stripe.checkout.Session:
    session = await client.v1.checkout.sessions.create_async(params={
        "mode": "subscription", "customer": customer,
        "line_items": [{"price": price, "quantity": 1}],
        "success_url": "http://app.test/ok", "cancel_url": "http://app.test/no",
        "client_reference_id": "church-1", "metadata": {"church_id": "church-1"},
        "subscription_data": {"metadata": {"church_id": "church-1"}, **sub_data}})
    _exact(session, stripe.checkout.Session)
    assert session.status == "open" and session.url
    async with aiohttp.ClientSession() as http:
        async with http.get(session.url) as page:
            assert page.status == 200 and "text/html" in page.headers["Content-Type"]
        async with http.post(f"{sim.base_url}/sim/checkout/{session.id}/complete") as done:
            assert done.status == 200
    return session


async def test_every_call_of_the_adapter(sim: RunningStripeSim, client: stripe.StripeClient,
                                         hook: Hook) -> None:
    price = await _catalogue(client)
    listed = await client.v1.prices.list_async(
        params={"lookup_keys": ["starter_monthly", "nope"], "active": True, "limit": 100})
    _exact(listed, stripe.ListObject)
    assert [p.id for p in listed.data] == [price.id] and not listed.has_more
    customer = await client.v1.customers.create_async(
        params={"name": "Grace", "email": "pastor@grace.test",
                "metadata": {"church_id": "church-1"}},
        options={"idempotency_key": "ywm-customer-church-1"})
    _exact(customer, stripe.Customer)
    _exact(await client.v1.customers.retrieve_async(customer.id), stripe.Customer)
    found = await client.v1.customers.search_async(
        params={"query": "metadata['church_id']:'church-1'", "limit": 1})
    _exact(found, stripe.SearchResultObject)
    assert [c.id for c in found.data] == [customer.id]
    session = await _checkout(sim, client, customer.id, price.id,
                              trial_end=int(time.time()) + 5 * 86_400)
    session = await client.v1.checkout.sessions.retrieve_async(session.id)
    _exact(session, stripe.checkout.Session)
    assert session.status == "complete" and isinstance(session.subscription, str)
    sub = await client.v1.subscriptions.retrieve_async(session.subscription)
    _exact(sub, stripe.Subscription)
    assert sub.status == "trialing" and sub.metadata["church_id"] == "church-1"
    assert type(sub["items"].data[0]) is stripe.SubscriptionItem
    assert sub["items"].data[0].price.lookup_key == "starter_monthly"
    portal = await client.v1.billing_portal.sessions.create_async(
        params={"customer": customer.id, "return_url": "http://app.test/billing"})
    _exact(portal, stripe.billing_portal.Session)
    item = await client.v1.invoice_items.create_async(
        params={"customer": customer.id, "pricing": {"price": price.id},
                "description": "setup", "metadata": {"number": "+12125550100"}},
        options={"idempotency_key": "setup-1"})
    _exact(item, stripe.InvoiceItem)
    for _ in range(3):
        async with aiohttp.ClientSession() as http, http.post(
                f"{sim.base_url}/sim/subscriptions/{sub.id}/advance") as resp:
            assert resp.status == 200
    first = await client.v1.invoices.list_async(params={"customer": customer.id, "limit": 2})
    _exact(first, stripe.ListObject)
    assert first.has_more and all(type(i) is stripe.Invoice for i in first.data)
    rest = await client.v1.invoices.list_async(
        params={"customer": customer.id, "limit": 2, "starting_after": first.data[-1].id})
    ids = [i.id for i in first.data] + [i.id for i in rest.data]
    assert not rest.has_more and len(ids) == len(set(ids)) == 4
    paged = [i.id async for i in first.auto_paging_iter()]   # the library's own pager
    assert paged == ids
    invoices = [*first.data, *rest.data]
    assert [i.amount_paid for i in invoices] == [4900, 4900, 9800, 0]   # setup item at renewal
    assert type(invoices[2].lines.data[0]) is stripe.InvoiceLineItem


async def test_webhooks_verify_with_construct_event(sim: RunningStripeSim,
                                                    client: stripe.StripeClient,
                                                    hook: Hook) -> None:
    price = await _catalogue(client)
    customer = await client.v1.customers.create_async(params={"email": "a@grace.test"})
    session = await _checkout(sim, client, customer.id, price.id, trial_period_days=14)
    sub_id = (await client.v1.checkout.sessions.retrieve_async(session.id)).subscription
    async with aiohttp.ClientSession() as http:
        for path, body in (("advance", {"to": "trial_will_end"}), ("advance", {}),
                           ("fail-next-payment", {"reason": "authentication_required"}),
                           ("advance", {}), ("cancel", {})):
            async with http.post(f"{sim.base_url}/sim/subscriptions/{sub_id}/{path}",
                                 json=body) as resp:
                assert resp.status == 200, await resp.text()
    assert await sim.sender.idle(5.0)
    events = [stripe.Webhook.construct_event(body.decode(), header, sim.webhook_secret)
              for body, header in hook.received]
    classes = {"customer.subscription.created": stripe.Subscription,
               "customer.subscription.updated": stripe.Subscription,
               "customer.subscription.deleted": stripe.Subscription,
               "customer.subscription.trial_will_end": stripe.Subscription,
               "checkout.session.completed": stripe.checkout.Session,
               "invoice.paid": stripe.Invoice, "invoice.payment_failed": stripe.Invoice,
               "invoice.payment_action_required": stripe.Invoice}
    assert {e.type for e in events} == set(classes)
    for event in events:
        assert type(event) is stripe.Event and _problems(event) == []
        _exact(event.data.object, classes[event.type])
    updated = [e for e in events if e.type == "customer.subscription.updated"]
    assert [e.data.object.status for e in updated] == ["active", "past_due"]
    assert updated[0].data.previous_attributes["status"] == "trialing"
    body, header = hook.received[0]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.decode(), header, "whsec_wrong")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.decode(), header, sim.webhook_secret,
                                       tolerance=-1)   # stale under any window


async def test_errors_are_the_librarys_exceptions(sim: RunningStripeSim,
                                                  client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.subscriptions.retrieve_async("sub_missing")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.checkout.sessions.create_async(params={"mode": "subscription"})
    assert refused.value.http_status == 400 and refused.value.code == "parameter_missing"
    assert refused.value.param == "success_url"
    # the same idempotency key: the same answer; with other parameters: refused
    made = [await client.v1.customers.create_async(params={"email": "x@y.test"},
                                                   options={"idempotency_key": "k-1"})
            for _ in range(2)]
    assert made[0].id == made[1].id and len(sim.state.objects["customer"]) == 1
    with pytest.raises(stripe.IdempotencyError):
        await client.v1.customers.create_async(params={"email": "z@y.test"},
                                               options={"idempotency_key": "k-1"})
    async with aiohttp.ClientSession() as http:
        for kind in ("429", "500"):
            async with http.post(f"{sim.base_url}/sim/faults", json={"kind": kind}) as r:
                assert r.status == 201
    with pytest.raises(stripe.RateLimitError) as limited:
        await client.v1.prices.list_async()
    assert limited.value.http_status == 429
    assert limited.value.json_body is not None
    assert limited.value.json_body["error"]["code"] == "rate_limit"
    with pytest.raises(stripe.APIError) as failed:
        await client.v1.prices.list_async()
    assert failed.value.http_status == 500
    error = orjson.loads(limited.value.http_body or "{}")["error"]
    assert set(error) <= {"type", "code", "message", "param", "doc_url"}
    http = stripe.AIOHTTPClient()
    bad = stripe.StripeClient("sk_test_other", http_client=http,
                              base_addresses={"api": sim.base_url})
    try:
        with pytest.raises(stripe.AuthenticationError):
            await bad.v1.prices.list_async()
    finally:
        await http.close_async()
