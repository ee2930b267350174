"""The Stripe adapter against the Stripe simulator over real HTTP (no mocks): the catalogue
synced once, checkout to an active subscription with its signed webhooks, a failed renewal,
webhook signatures refused, Stripe's faults as 503."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.integration.stripe_sim_fixtures import *  # noqa: F403
from tests.integration.stripe_sim_fixtures import Receiver, sim_post
from ywmessaging.billing.catalogue import PLANS
from ywmessaging.billing.errors import (
    BillingNotFound,
    BillingRequestRefused,
    BillingUnavailable,
    PriceNotFound,
)
from ywmessaging.billing.simulator import RunningStripeSim, stripe_signature
from ywmessaging.billing.stripe_client import StripeBilling
from ywmessaging.billing.sync import sync_catalogue
from ywmessaging.commands import stripe_sim as stripe_sim_command
from ywmessaging.config import Settings
from ywmessaging.messaging.signature import (
    WebhookKeyMissing,
    WebhookSignatureInvalid,
    WebhookTimestampInvalid,
)

CHURCH = "7d9f3a4e-0000-4000-8000-000000000001"


async def _subscribe(billing: StripeBilling, sim: RunningStripeSim, prices: dict[str, str], *,
                     key: str = "starter_monthly",
                     trial_end: datetime | None = None) -> str:
    customer = await billing.ensure_customer(CHURCH, name="Grace", email="pastor@grace.test")
    session = await billing.create_checkout(
        church_id=CHURCH, customer_id=customer, price_id=prices[key],
        success_url="http://app.test/billing/done?session={CHECKOUT_SESSION_ID}",
        cancel_url="http://app.test/billing", trial_end=trial_end)
    assert session.url.startswith(sim.base_url)
    done = await sim_post(sim, f"/sim/checkout/{session.id}/complete")
    assert done["redirect"] == f"http://app.test/billing/done?session={session.id}"
    sub_id: str = done["subscription"]["id"]
    return sub_id


async def test_sync_catalogue_makes_everything_once(billing: StripeBilling,
                                                    stripe_sim: RunningStripeSim) -> None:
    first = await sync_catalogue(billing, PLANS)
    assert first.changed
    assert sorted(first.prices) == sorted(
        [f"{p.code}_{c}" for p in PLANS for c in ("monthly", "annual")] + ["number_setup"])
    assert {what for what, _ in first.prices.values()} == {"created"}
    counts = dict(stripe_sim.state.objects["price"]), dict(stripe_sim.state.objects["product"])
    second = await sync_catalogue(billing, PLANS)
    assert not second.changed
    assert {k: v[1] for k, v in second.prices.items()} == {k: v[1]
                                                           for k, v in first.prices.items()}
    assert (dict(stripe_sim.state.objects["price"]),
            dict(stripe_sim.state.objects["product"])) == counts   # nothing new at Stripe
    found = await billing.prices(["starter_monthly", "pro_annual", "number_setup"])
    assert found["starter_monthly"].unit_amount == 4_900
    assert found["starter_monthly"].interval == "month"
    assert found["pro_annual"].unit_amount == 123_840 and found["pro_annual"].interval == "year"
    assert found["number_setup"].unit_amount == 50 and found["number_setup"].interval is None


async def test_a_changed_price_takes_the_lookup_key_over(billing: StripeBilling) -> None:
    await sync_catalogue(billing, PLANS)
    old = (await billing.prices(["growth_monthly"]))["growth_monthly"]
    growth = next(p for p in PLANS if p.code == "growth")
    dearer = [dataclasses.replace(growth, monthly_cents=8_900)]
    report = await sync_catalogue(billing, dearer)
    assert report.prices["growth_monthly"][0] == "replaced"
    assert report.prices["growth_annual"][0] == "kept"
    now = (await billing.prices(["growth_monthly"]))["growth_monthly"]
    assert now.id != old.id and now.unit_amount == 8_900
    assert not (await sync_catalogue(billing, dearer)).changed


async def test_the_customer_is_made_once_per_church(billing: StripeBilling,
                                                    stripe_sim: RunningStripeSim) -> None:
    first = await billing.ensure_customer(CHURCH, name="Grace", email="pastor@grace.test")
    again = await billing.ensure_customer(CHURCH, name="Grace")
    kept = await billing.ensure_customer(CHURCH, name="Grace", customer_id=first)
    assert first == again == kept
    assert len(stripe_sim.state.objects["customer"]) == 1
    # a customer deleted at Stripe is found again by the church's metadata or made anew
    other = await billing.ensure_customer("another-church", name="Hope",
                                          customer_id="cus_gone")
    assert other != first and len(stripe_sim.state.objects["customer"]) == 2


async def test_checkout_then_complete_is_an_active_subscription_with_signed_webhooks(
        billing: StripeBilling, stripe_sim: RunningStripeSim, receiver: Receiver,
        catalogue_prices: dict[str, str]) -> None:
    sub_id = await _subscribe(billing, stripe_sim, catalogue_prices)
    sub = await billing.subscription(sub_id)
    assert sub.status == "active" and sub.lookup_key == "starter_monthly"
    assert sub.church_id == CHURCH and not sub.cancel_at_period_end
    assert sub.current_period_end is not None
    assert sub.current_period_end - datetime.now(UTC) > timedelta(days=29)
    assert await stripe_sim.sender.idle(5.0)
    events = [billing.verify_webhook(body, header) for body, header in receiver.received]
    assert [e.type for e in events] == ["customer.subscription.created", "invoice.paid",
                                        "checkout.session.completed"]
    completed = events[-1].data.object
    assert completed["client_reference_id"] == CHURCH and completed["subscription"] == sub_id
    page = await billing.invoices(sub.customer)
    assert [i.status for i in page.invoices] == ["paid"]
    assert page.invoices[0].amount_paid == 4_900 and not page.has_more
    portal = await billing.create_portal(sub.customer, "http://app.test/billing")
    assert portal.startswith(f"{stripe_sim.base_url}/sim/portal/")


async def test_a_trial_keeps_its_end_and_the_first_charge_waits(
        billing: StripeBilling, stripe_sim: RunningStripeSim, receiver: Receiver,
        catalogue_prices: dict[str, str]) -> None:
    trial_end = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    sub_id = await _subscribe(billing, stripe_sim, catalogue_prices, trial_end=trial_end)
    sub = await billing.subscription(sub_id)
    assert sub.status == "trialing" and sub.trial_end == trial_end
    await sim_post(stripe_sim, f"/sim/subscriptions/{sub_id}/advance", {"to": "trial_will_end"})
    await sim_post(stripe_sim, f"/sim/subscriptions/{sub_id}/advance")
    assert (await billing.subscription(sub_id)).status == "active"
    assert await stripe_sim.sender.idle(5.0)
    assert receiver.types()[-3:] == ["customer.subscription.trial_will_end", "invoice.paid",
                                     "customer.subscription.updated"]
    amounts = [i.amount_paid for i in (await billing.invoices(sub.customer)).invoices]
    assert amounts == [4_900, 0]    # newest first: the first real charge, then the trial's


async def test_a_failed_renewal_is_payment_failed_and_past_due_then_paid(
        billing: StripeBilling, stripe_sim: RunningStripeSim, receiver: Receiver,
        catalogue_prices: dict[str, str]) -> None:
    sub_id = await _subscribe(billing, stripe_sim, catalogue_prices)
    customer = (await billing.subscription(sub_id)).customer
    items = {await billing.add_number_setup_fee(customer, number="+12125550100",
                                                order_id="order-1") for _ in range(2)}
    assert len(items) == 1                           # asked twice, charged once
    await sim_post(stripe_sim, f"/sim/subscriptions/{sub_id}/fail-next-payment")
    await sim_post(stripe_sim, f"/sim/subscriptions/{sub_id}/advance")
    sub = await billing.subscription(sub_id)
    assert sub.status == "past_due"
    assert await stripe_sim.sender.idle(5.0)
    events = [billing.verify_webhook(body, header) for body, header in receiver.received]
    failed = [e for e in events if e.type == "invoice.payment_failed"]
    assert len(failed) == 1
    invoice = failed[0].data.object
    assert invoice["amount_due"] == 4_950 and invoice["attempt_count"] == 1   # plan + setup fee
    updated = events[-1]
    assert updated.type == "customer.subscription.updated"
    assert updated.data.object["status"] == "past_due"
    assert updated.data.previous_attributes["status"] == "active"
    # the card is fixed: the open invoice is paid and the subscription is active again
    await sim_post(stripe_sim, f"/sim/invoices/{invoice['id']}/pay")
    assert (await billing.subscription(sub_id)).status == "active"


async def test_dunning_ends_in_cancellation(billing: StripeBilling, stripe_sim: RunningStripeSim,
                                            receiver: Receiver,
                                            catalogue_prices: dict[str, str]) -> None:
    sub_id = await _subscribe(billing, stripe_sim, catalogue_prices)
    await sim_post(stripe_sim, f"/sim/subscriptions/{sub_id}/fail-next-payment", {"count": 5})
    for _ in range(3):   # the renewal, then two retries
        await sim_post(stripe_sim, f"/sim/subscriptions/{sub_id}/advance")
    assert (await billing.subscription(sub_id)).status == "canceled"
    assert await stripe_sim.sender.idle(5.0)
    assert receiver.types().count("invoice.payment_failed") == 3
    assert receiver.types()[-1] == "customer.subscription.deleted"


async def test_a_webhook_is_retried_and_signed_afresh(
        billing: StripeBilling, stripe_sim: RunningStripeSim, receiver: Receiver,
        catalogue_prices: dict[str, str]) -> None:
    receiver.fail_first = 2
    await _subscribe(billing, stripe_sim, catalogue_prices)
    assert await stripe_sim.sender.idle(5.0)
    assert receiver.answered[:3] == [500, 500, 200]
    bodies = {body for body, _ in receiver.received[:3]}
    assert len(bodies) == 1                                   # the same event three times
    assert receiver.types() == ["customer.subscription.created", "invoice.paid",
                                "checkout.session.completed"]   # order kept through retries
    for body, header in receiver.received:
        billing.verify_webhook(body, header)


async def test_bad_stale_or_unsigned_webhooks_are_refused(
        billing: StripeBilling, stripe_sim: RunningStripeSim,
        stripe_settings: Settings) -> None:
    body = orjson.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid",
                         "data": {"object": {"id": "in_1", "object": "invoice"}}})
    good = stripe_signature(stripe_sim.webhook_secret, body)
    assert billing.verify_webhook(body, good).id == "evt_1"
    with pytest.raises(WebhookSignatureInvalid):
        billing.verify_webhook(body, stripe_signature("whsec_other", body))
    with pytest.raises(WebhookSignatureInvalid):
        billing.verify_webhook(body + b" ", good)             # the body was changed
    with pytest.raises(WebhookSignatureInvalid):
        billing.verify_webhook(body, None)
    with pytest.raises(WebhookTimestampInvalid):
        billing.verify_webhook(body, stripe_signature(stripe_sim.webhook_secret, body,
                                                      at=int(time.time()) - 301))
    # while a secret is rolled, either one signs
    rolled = StripeBilling(stripe_settings.with_(
        stripe_webhook_secret=f"whsec_new, {stripe_sim.webhook_secret}"))
    try:
        assert rolled.verify_webhook(body, good).id == "evt_1"
        assert rolled.verify_webhook(body, stripe_signature("whsec_new", body)).id == "evt_1"
    finally:
        await rolled.close()
    unset = StripeBilling(stripe_settings.with_(stripe_webhook_secret=None))
    try:
        with pytest.raises(WebhookKeyMissing):
            unset.verify_webhook(body, good)
    finally:
        await unset.close()


async def test_faults_are_retried_then_503(billing: StripeBilling,
                                           stripe_sim: RunningStripeSim) -> None:
    await sim_post(stripe_sim, "/sim/faults", {"kind": "429", "count": 1}, expect=201)
    assert await billing.prices(["starter_monthly"]) == {}    # one 429, retried, answered
    for kind in ("429", "500"):
        await sim_post(stripe_sim, "/sim/faults", {"kind": kind, "count": 3}, expect=201)
        with pytest.raises(BillingUnavailable) as caught:
            await billing.prices(["starter_monthly"])
        assert caught.value.status == 503 and caught.value.code == "billing_unavailable"
        assert stripe_sim.state.faults == []                  # three tries: 1 + 2 retries
    with pytest.raises(BillingNotFound) as missing:
        await billing.subscription("sub_nope")
    assert missing.value.status == 404


async def test_an_unreachable_stripe_is_503(stripe_settings: Settings) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = StripeBilling(stripe_settings.with_(stripe_api_base=f"http://127.0.0.1:{port}",
                                                 stripe_max_retries=0))
    try:
        with pytest.raises(BillingUnavailable):
            await client.prices(["starter_monthly"])
    finally:
        await client.close()


async def test_the_sync_catalogue_command(stripe_sim: RunningStripeSim) -> None:
    env = {"STRIPE_API_BASE": stripe_sim.base_url, "YWM_LOG_LEVEL": "warning",
           "PATH": "/usr/bin:/bin"}

    async def ywm() -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ywmessaging", "billing", "sync-catalogue", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode() + err.decode()

    code, out = await ywm()
    assert code == 0, out
    assert "starter_monthly\tcreated\tprice_" in out and "number_setup\tcreated" in out
    code, out = await ywm()
    assert code == 0, out
    assert "nothing to do" in out and "created" not in out
    await sim_post(stripe_sim, "/sim/faults", {"kind": "500", "count": None}, expect=201)
    code, out = await ywm()
    assert code == 1 and "billing_unavailable" in out


def test_dev_uses_its_own_stripe_simulator_and_trusts_its_secret() -> None:
    dev = stripe_sim_command.dev_settings(Settings(), "0.0.0.0", 8090)
    assert dev.stripe_api_base == "http://127.0.0.1:8082"
    assert dev.stripe_sim_webhook_url == "http://127.0.0.1:8090/webhooks/stripe"
    assert dev.stripe_webhook_secrets()[0].startswith("whsec_")
    given = Settings(stripe_webhook_secret="whsec_mine")
    assert stripe_sim_command.dev_settings(given, "127.0.0.1", 8080).stripe_webhook_secrets() \
        == ("whsec_mine",)
    real = Settings(stripe_api_base="https://api.stripe.com", stripe_webhook_secret="whsec_live")
    assert stripe_sim_command.dev_settings(real, "127.0.0.1", 8080) == real


async def test_dev_runs_the_stripe_simulator_with_the_catalogue(stripe_settings: Settings) -> None:
    import socket

    from aiohttp import web

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = stripe_settings.with_(stripe_api_base=f"http://127.0.0.1:{port}",
                                     stripe_sim_port=port)
    app = web.Application()
    app.cleanup_ctx.append(stripe_sim_command.dev_ctx(settings))
    runner = web.AppRunner(app)
    await runner.setup()
    client = StripeBilling(settings)
    try:
        prices = await client.prices(["starter_monthly", "growth_annual", "number_setup"])
        assert sorted(prices) == ["growth_annual", "number_setup", "starter_monthly"]
    finally:
        await client.close()
        await runner.cleanup()
    gone = StripeBilling(settings.with_(stripe_max_retries=0))
    try:
        with pytest.raises(BillingUnavailable):    # stopped with the app
            await gone.prices(["starter_monthly"])
    finally:
        await gone.close()


async def test_no_setup_fee_without_the_catalogue(billing: StripeBilling) -> None:
    customer = await billing.ensure_customer(CHURCH, name="Grace")
    with pytest.raises(PriceNotFound) as missing:
        await billing.add_number_setup_fee(customer, number="+12125550100", order_id="o-2")
    assert missing.value.status == 503 and missing.value.code == "price_not_found"


async def test_a_trial_ending_too_soon_is_refused_with_a_clear_4xx(
        billing: StripeBilling, catalogue_prices: dict[str, str]) -> None:
    customer = await billing.ensure_customer(CHURCH, name="Grace")
    with pytest.raises(BillingRequestRefused) as refused:
        await billing.create_checkout(
            church_id=CHURCH, customer_id=customer, price_id=catalogue_prices["pro_annual"],
            success_url="http://app.test/ok", cancel_url="http://app.test/no",
            trial_end=datetime.now(UTC) + timedelta(days=1))
    assert refused.value.status == 400 and refused.value.code == "billing_request_refused"


async def test_an_event_resent_is_the_same_event_signed_afresh(
        billing: StripeBilling, stripe_sim: RunningStripeSim, receiver: Receiver,
        catalogue_prices: dict[str, str]) -> None:
    await _subscribe(billing, stripe_sim, catalogue_prices)
    assert await stripe_sim.sender.idle(5.0)
    first = billing.verify_webhook(*receiver.received[-1])
    await asyncio.sleep(1.1)   # a new second: a new `t`
    done = await sim_post(stripe_sim, f"/sim/events/{first.id}/resend")
    assert done["status"] == 200
    again = billing.verify_webhook(*receiver.received[-1])
    assert again.id == first.id and receiver.received[-1][0] == receiver.received[-2][0]
    assert receiver.received[-1][1] != receiver.received[-2][1]
