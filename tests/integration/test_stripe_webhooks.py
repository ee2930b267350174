"""Paying for a plan end to end, against the Stripe and carrier simulators over real HTTP:
checkout → the simulator's signed webhooks → `POST /webhooks/stripe` → the plan active and its
limits raised; replayed and out-of-order events change nothing; bad and stale signatures are
refused before anything is stored; an unpaid invoice stops sending and paying it resumes it;
Stripe down while an event is processed loses nothing; the portal and the invoices."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.integration.auth_fixtures import read_outbox
from tests.integration.sending_fixtures import *  # noqa: F403
from tests.integration.sending_fixtures import Sending, running_worker, sim_numbers, wait_until
from tests.integration.stripe_sim_fixtures import (
    billing,
    catalogue_prices,
    sim_post,
    stripe_settings,
    stripe_sim,
)
from ywmessaging.billing.simulator import RunningStripeSim, stripe_signature
from ywmessaging.billing.stripe_client import StripeBilling
from ywmessaging.crypto import SecretBox
from ywmessaging.keys import REGISTRY_POOL
from ywmessaging.ops.inbox import replay

__all__ = ["billing", "catalogue_prices", "stripe_settings", "stripe_sim"]

SMALL = {"trial_days": 14, "plans": [
    {"code": "starter", "name": "Starter", "monthly_cents": 4900, "annual_cents": 47040,
     "limits": {"branches": 1, "members": 3, "messages_per_month": 1000, "co_admins": 1}},
    {"code": "growth", "name": "Growth", "monthly_cents": 7900, "annual_cents": 75840,
     "limits": {"branches": 3, "members": 6, "messages_per_month": 5000, "co_admins": 3}},
    {"code": "pro", "name": "Pro", "monthly_cents": 12900, "annual_cents": 123840,
     "limits": {"branches": 10, "members": None, "messages_per_month": None, "co_admins": 3}},
]}


@pytest.fixture
def send_overrides(stripe_sim: RunningStripeSim, tmp_path_factory: Any) -> dict[str, Any]:
    """The app talks to this test's Stripe simulator and trusts its secret; the deployment's
    plans are small (limits are reached fast); no grace after a failed payment."""
    path = Path(tmp_path_factory.mktemp("plans")) / "plans.json"
    path.write_bytes(orjson.dumps(SMALL))
    return {"stripe_api_base": stripe_sim.base_url, "stripe_timeout": 2.0,
            "stripe_max_retries": 1, "stripe_webhook_secret": stripe_sim.webhook_secret,
            "billing_catalogue": path, "billing_grace_days": 0.0,
            "webhook_sweep_interval": 0.2}


@pytest.fixture
async def paying(sending: Sending, stripe_sim: RunningStripeSim,
                 catalogue_prices: dict[str, str]) -> Sending:
    """The sending fixtures, with the Stripe simulator's webhooks going to this test's app and
    the catalogue's prices at the simulator."""
    stripe_sim.set_webhook_url(str(sending.client.make_url("/webhooks/stripe")))
    return sending


async def _json(resp: Any, status: int) -> Any:
    doc = await resp.json(content_type=None)
    assert resp.status == status, doc
    return doc


async def _plan(paying: Sending, church: Any) -> Any:
    return await _json(await paying.client.get("/api/v1/billing/plan", headers=church.auth), 200)


async def _tenant_row(paying: Sending, church: Any) -> Any:
    return await paying.registry_conn.fetchrow(
        "SELECT plan, subscription_status, stripe_customer_id, stripe_subscription_id, "
        "billing_version, past_due_since FROM tenants WHERE id = $1",
        uuid.UUID(church.tenant_id))


async def _end_trial(paying: Sending, church: Any) -> None:
    await paying.registry_conn.execute(
        "UPDATE tenants SET trial_ends_at = now() - interval '1 minute' WHERE id = $1",
        uuid.UUID(church.tenant_id))


async def _checkout(paying: Sending, church: Any, plan: str = "growth",
                    cycle: str = "monthly") -> Any:
    return await _json(await paying.client.post(
        "/api/v1/billing/checkout", headers=church.auth, json={"plan": plan, "cycle": cycle}),
        200)


async def _pay(paying: Sending, sim: RunningStripeSim, church: Any, plan: str = "growth") -> Any:
    """Checkout and pay; wait until the app has applied the subscription; its row."""
    session = await _checkout(paying, church, plan)
    done = await sim_post(sim, f"/sim/checkout/{session['session_id']}/complete")
    assert await sim.sender.idle(5.0)

    async def applied() -> Any:
        row = await _tenant_row(paying, church)
        return row if row["stripe_subscription_id"] == done["subscription"]["id"] else None

    return await wait_until(applied)


async def _member(paying: Sending, church: Any, n: int) -> Any:
    return await paying.client.post("/api/v1/members", headers=church.auth, json={
        "first_name": "M", "last_name": str(n), "phone": f"+1312555{n:04d}"})


async def _history(paying: Sending, church: Any) -> list[Any]:
    return list(await paying.registry_conn.fetch(
        "SELECT version, source, event_id, new_state FROM billing_history "
        "WHERE tenant_id = $1 ORDER BY version", uuid.UUID(church.tenant_id)))


async def _post_event(paying: Sending, sim: RunningStripeSim, event: dict[str, Any], *,
                      secret: str | None = None, at: int | None = None,
                      signature: str | None = None) -> Any:
    body = orjson.dumps(event)
    header = signature if signature is not None else stripe_signature(
        secret or sim.webhook_secret, body, at)
    headers = {"Content-Type": "application/json"}
    if header:
        headers["Stripe-Signature"] = header
    return await paying.client.post("/webhooks/stripe", data=body, headers=headers)


async def test_checkout_then_webhook_makes_the_plan_active_and_raises_the_limits(
        paying: Sending, stripe_sim: RunningStripeSim) -> None:
    church, _, _ = await paying.church()
    await _end_trial(paying, church)          # no trial left: the first charge is now
    for n in range(3):
        assert (await _member(paying, church, n)).status == 201
    refused = await _json(await _member(paying, church, 3), 402)
    assert (refused["code"], refused["limit"], refused["plan"]) == (
        "plan_limit_reached", 3, "starter")
    before = await _plan(paying, church)
    assert (before["status"], before["sending"]) == ("trialing", False)

    session = await _checkout(paying, church)
    async with aiohttp.ClientSession() as http, http.get(session["url"]) as page:
        assert page.status == 200 and "Subscribe" in await page.text()
    row = await _tenant_row(paying, church)
    assert row["plan"] == "starter" and row["stripe_customer_id"]   # nothing paid yet

    row = await _pay(paying, stripe_sim, church)
    after = await _plan(paying, church)
    assert (after["plan"]["code"], after["cycle"], after["status"], after["sending"]) == (
        "growth", "monthly", "active", True)
    assert after["limits"]["members"] == 6 and after["current_period_end"]
    for n in range(3, 6):
        assert (await _member(paying, church, n)).status == 201
    await _json(await _member(paying, church, 6), 402)
    sources = [(h["source"], h["event_id"] is not None) for h in await _history(paying, church)]
    assert sources[-1] == ("stripe", True) and ("stripe", False) in sources  # customer, then sub


async def test_a_trial_left_is_carried_into_the_subscription(
        paying: Sending, stripe_sim: RunningStripeSim) -> None:
    church, _, _ = await paying.church()
    trial_end = (await _plan(paying, church))["trial_ends_at"]
    row = await _pay(paying, stripe_sim, church, "pro")
    view = await _plan(paying, church)
    assert (row["plan"], row["subscription_status"]) == ("pro", "trialing")
    assert view["trial_ends_at"][:16] == trial_end[:16] and view["sending"] is True
    assert view["limits"]["members"] is None


async def test_replayed_and_late_events_change_nothing(
        paying: Sending, stripe_sim: RunningStripeSim) -> None:
    """Every event re-reads the subscription from Stripe: a replay is stored once, an old copy
    under a new id re-applies the state as it is. (Two snapshots applied in the wrong order:
    test_billing_dunning.py, test_apply_subscription_never_goes_back_and_records_each_change.)"""
    church, _, _ = await paying.church()
    await _end_trial(paying, church)
    row = await _pay(paying, stripe_sim, church)
    version = row["billing_version"]
    stats = (await _json(await paying.client.session.get(f"{stripe_sim.base_url}/sim/stats"),
                         200))
    delivered = [d for d in stats["deliveries"] if d["status"] == 200]
    first = delivered[0]["event_id"]

    # a replay (the dashboard's "Resend"): the same event id, stored once
    await asyncio.sleep(1.05)
    await sim_post(stripe_sim, f"/sim/events/{first}/resend")
    assert await stripe_sim.sender.idle(5.0)
    assert (await _tenant_row(paying, church))["billing_version"] == version

    # an old copy under a new id (Stripe does not promise order): processing refetches the
    # subscription, which is as it was, so nothing changes
    sub_id = row["stripe_subscription_id"]
    old = {"id": f"evt_old_{secrets.token_hex(6)}", "object": "event",
           "type": "customer.subscription.updated", "created": int(time.time()) - 3600,
           "data": {"object": {"id": sub_id, "object": "subscription", "status": "incomplete",
                               "customer": row["stripe_customer_id"]}}}
    assert (await _json(await _post_event(paying, stripe_sim, old), 200))["status"] == "stored"

    async def finished() -> Any:
        return await paying.registry_conn.fetchrow(
            "SELECT state, last_error FROM webhook_inbox WHERE provider = 'stripe' "
            "AND event_id = $1 AND state IN ('done', 'ignored')", old["id"])

    done = await wait_until(finished)
    assert (done["state"], done["last_error"]) == ("done", "unchanged")
    assert (await _tenant_row(paying, church))["billing_version"] == version

    # cancelled now; a late `updated` event from when it was active cannot bring it back
    await sim_post(stripe_sim, f"/sim/subscriptions/{sub_id}/cancel")
    assert await stripe_sim.sender.idle(5.0)
    await wait_until(lambda: _status_is(paying, church, "canceled"))
    late = {**old, "id": f"evt_late_{secrets.token_hex(6)}"}
    late["data"] = {"object": {**old["data"]["object"], "status": "active"}}
    await _json(await _post_event(paying, stripe_sim, late), 200)
    await wait_until(lambda: paying.registry_conn.fetchval(
        "SELECT 1 FROM webhook_inbox WHERE event_id = $1 AND state = 'done'", late["id"]))
    assert (await _tenant_row(paying, church))["subscription_status"] == "canceled"


async def _status_is(paying: Sending, church: Any, status: str) -> bool:
    return bool((await _tenant_row(paying, church))["subscription_status"] == status)


async def test_bad_stale_or_missing_signatures_are_refused_and_nothing_is_stored(
        paying: Sending, stripe_sim: RunningStripeSim) -> None:
    event = {"id": f"evt_forged_{secrets.token_hex(6)}", "object": "event",
             "type": "customer.subscription.updated", "created": int(time.time()),
             "data": {"object": {"id": "sub_forged", "object": "subscription"}}}
    cases = [
        ({"secret": "whsec_not_ours"}, "webhook_signature_invalid"),
        ({"at": int(time.time()) - 301}, "webhook_timestamp_invalid"),
        ({"signature": ""}, "webhook_signature_invalid"),
        ({"signature": "t=1,v1=zz"}, "webhook_signature_invalid"),
    ]
    for kwargs, code in cases:
        doc = await _json(await _post_event(paying, stripe_sim, event, **kwargs), 401)
        assert doc["code"] == code, (kwargs, doc)
    # signed by us, but the body is not what was signed
    body = orjson.dumps(event)
    header = stripe_signature(stripe_sim.webhook_secret, body)
    tampered = body.replace(b"sub_forged", b"sub_forgex")
    resp = await paying.client.post("/webhooks/stripe", data=tampered, headers={
        "Stripe-Signature": header, "Content-Type": "application/json"})
    assert (await _json(resp, 401))["code"] == "webhook_signature_invalid"
    assert await paying.registry_conn.fetchval(
        "SELECT count(*) FROM webhook_inbox WHERE event_id = $1", event["id"]) == 0
    # signed, but no Stripe event: a time no clock has, a type PostgreSQL text cannot hold
    for odd in ({**event, "id": f"evt_odd_{secrets.token_hex(6)}", "created": 10 ** 15},
                {**event, "id": f"evt_nul_{secrets.token_hex(6)}", "type": "invoice.\u0000"}):
        doc = await _json(await _post_event(paying, stripe_sim, odd), 400)
        assert doc["code"] == "webhook_malformed", doc
        assert await paying.registry_conn.fetchval(
            "SELECT count(*) FROM webhook_inbox WHERE event_id = $1", odd["id"]) == 0
    # the same event, signed well, is stored once
    assert (await _json(await _post_event(paying, stripe_sim, event), 200))["status"] == "stored"
    assert (await _json(await _post_event(paying, stripe_sim, event), 200))["status"] == \
        "duplicate"


async def test_an_unpaid_invoice_stops_sending_and_paying_it_resumes(
        paying: Sending, stripe_sim: RunningStripeSim) -> None:
    church, _, phones = await paying.church(members=2)
    row = await _pay(paying, stripe_sim, church)
    sub_id = row["stripe_subscription_id"]
    await sim_post(stripe_sim, f"/sim/subscriptions/{sub_id}/fail-next-payment", {"count": 5})
    renewed = await sim_post(stripe_sim, f"/sim/subscriptions/{sub_id}/advance")
    assert await stripe_sim.sender.idle(5.0)
    await wait_until(lambda: _status_is(paying, church, "past_due"))
    folder = paying.settings.data_dir / "outbox"
    notice = await wait_until(lambda: _read(folder, "payment_failed", church.email))
    assert "did not go through" in notice[0]

    refused = await _json(await paying.client.post(
        "/api/v1/broadcasts", headers=church.auth,
        json={"body": "Hello", "target": {"all": True}}), 402)
    assert (refused["code"], refused["reason"]) == ("subscription_inactive", "past_due")
    view = await _plan(paying, church)
    assert (view["status"], view["sending"]) == ("past_due", False)

    invoice = renewed["subscription"]["latest_invoice"]
    await sim_post(stripe_sim, f"/sim/invoices/{invoice}/pay")
    assert await stripe_sim.sender.idle(5.0)
    await wait_until(lambda: _status_is(paying, church, "active"))
    assert (await _tenant_row(paying, church))["past_due_since"] is None
    sent = await paying.broadcast(church, {"body": "Hello again", "target": {"all": True}})
    async with running_worker(paying.client, paying.settings):
        await wait_until(lambda: _sent_to(paying, phones), timeout=15.0)
    assert sent["id"]


async def _read(folder: Path, kind: str, to: str) -> list[str]:
    return read_outbox(folder, kind, to)


async def _sent_to(paying: Sending, phones: list[str]) -> bool:
    return set(phones) <= set(sim_numbers(paying.sim))


async def test_stripe_down_while_processing_loses_nothing(
        paying: Sending, stripe_sim: RunningStripeSim) -> None:
    church, _, _ = await paying.church()
    await _end_trial(paying, church)
    session = await _checkout(paying, church)
    # the app cannot read the subscription back: every webhook waits in the inbox
    await sim_post(stripe_sim, "/sim/faults",
                   {"kind": "500", "count": None, "path": "/v1/subscriptions"}, expect=201)
    done = await sim_post(stripe_sim, f"/sim/checkout/{session['session_id']}/complete")
    assert await stripe_sim.sender.idle(5.0)
    # paid, not applied yet: a second click on "Subscribe" is told so, not sent to pay again
    again = await _json(await paying.client.post(
        "/api/v1/billing/checkout", headers=church.auth,
        json={"plan": "growth", "cycle": "monthly"}), 409)
    assert again["code"] == "checkout_completed"
    await wait_until(lambda: paying.registry_conn.fetchval(
        "SELECT count(*) FROM webhook_inbox WHERE provider = 'stripe' AND state = 'failed' "
        "AND last_error = 'billing_unavailable'"))
    assert (await _tenant_row(paying, church))["stripe_subscription_id"] is None
    async with paying.client.session.delete(f"{stripe_sim.base_url}/sim/faults") as resp:
        assert resp.status in (200, 204)
    # the operator's `ywm inbox retry --all-failed`: Stripe's events are applied as Stripe's
    settings = paying.settings
    replayed = await replay(paying.client.server.app[REGISTRY_POOL], settings,
                            SecretBox(settings.require_secret_key()), ids=[], all_failed=True)
    assert replayed
    assert all(r.outcome is None or r.outcome.state == "done" for r in replayed), replayed
    await wait_until(lambda: _status_is(paying, church, "active"), timeout=15.0)
    assert (await _tenant_row(paying, church))["stripe_subscription_id"] == \
        done["subscription"]["id"]


async def test_an_event_is_applied_only_to_the_church_holding_its_customer(
        paying: Sending, stripe_sim: RunningStripeSim, billing: StripeBilling,
        catalogue_prices: dict[str, str]) -> None:
    payer, _, _ = await paying.church()
    other, _, _ = await paying.church()
    await _checkout(paying, other)    # `other` has a customer of its own now
    before = await _tenant_row(paying, other)
    # someone else's customer subscribes with metadata naming `other`
    stranger = await billing.ensure_customer(f"stranger-{secrets.token_hex(4)}", name="X")
    session = await billing.create_checkout(
        church_id=other.tenant_id, customer_id=stranger,
        price_id=catalogue_prices["pro_monthly"], success_url="http://localhost/ok",
        cancel_url="http://localhost/no")
    await sim_post(stripe_sim, f"/sim/checkout/{session.id}/complete")
    assert await stripe_sim.sender.idle(5.0)
    reasons = await wait_until(lambda: paying.registry_conn.fetch(
        "SELECT last_error FROM webhook_inbox WHERE provider = 'stripe' AND state = 'ignored' "
        "AND payload->'data'->'object'->>'customer' = $1", stranger))
    assert {r["last_error"] for r in reasons} == {"unknown_customer"}
    assert (await _tenant_row(paying, other)) == before
    # the church that paid is untouched by it, and its own payment applies
    row = await _pay(paying, stripe_sim, payer)
    assert (row["plan"], row["stripe_customer_id"]) != ("pro", stranger)


async def test_checkout_refusals_portal_and_invoices(
        paying: Sending, stripe_sim: RunningStripeSim) -> None:
    church, _, _ = await paying.church()
    bad = await _json(await paying.client.post(
        "/api/v1/billing/checkout", headers=church.auth,
        json={"plan": "platinum", "cycle": "monthly"}), 422)
    assert [e["code"] for e in bad["errors"]] == ["unknown_plan"]
    bad = await _json(await paying.client.post(
        "/api/v1/billing/checkout", headers=church.auth, json={"plan": "growth"}), 422)
    assert bad["code"] == "validation_failed"
    # a session the customer left (expired) is not handed out again
    left = await _checkout(paying, church)
    await sim_post(stripe_sim, f"/sim/checkout/{left['session_id']}/fail")
    fresh = await _checkout(paying, church)
    assert fresh["session_id"] != left["session_id"]
    empty = await _json(await paying.client.get("/api/v1/billing/invoices",
                                                headers=church.auth), 200)
    assert empty == {"items": [], "next_cursor": None}

    await _end_trial(paying, church)
    row = await _pay(paying, stripe_sim, church)
    again = await _json(await paying.client.post(
        "/api/v1/billing/checkout", headers=church.auth,
        json={"plan": "pro", "cycle": "annual"}), 409)
    assert again["code"] == "subscription_exists"
    await sim_post(stripe_sim, f"/sim/subscriptions/{row['stripe_subscription_id']}/advance")
    assert await stripe_sim.sender.idle(5.0)

    page = await _json(await paying.client.get("/api/v1/billing/invoices?limit=1",
                                               headers=church.auth), 200)
    assert len(page["items"]) == 1 and page["next_cursor"]
    assert page["items"][0]["amount_due"] == 7900 and page["items"][0]["status"] == "paid"
    rest = await _json(await paying.client.get(
        f"/api/v1/billing/invoices?limit=1&cursor={page['next_cursor']}",
        headers=church.auth), 200)
    assert [i["id"] for i in rest["items"]] != [i["id"] for i in page["items"]]
    assert (await paying.client.get("/api/v1/billing/invoices?cursor=nope",
                                    headers=church.auth)).status == 400

    portal = await _json(await paying.client.post("/api/v1/billing/portal",
                                                  headers=church.auth), 200)
    async with aiohttp.ClientSession() as http, http.get(portal["url"]) as resp:
        assert resp.status == 200 and row["stripe_subscription_id"] in await resp.text()
