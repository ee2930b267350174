"""10DLC (issue 12 part 5): brand and campaign registration through the carrier simulator's
10DLC API over real HTTP; status changes from its signed `10dlc.*` webhooks (or the worker's
poll when one never comes); a suspended campaign stops the church's sends (423
`campaign_suspended`, rows held by the worker) while STOP still works."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.auth_fixtures import Church, problem
from tests.integration.sending_fixtures import *  # noqa: F403
from tests.integration.sending_fixtures import (
    Sending,
    inbox_row,
    outbox_states,
    post_signed,
    running_worker,
    sim_inbound,
    sim_numbers,
    wait_until,
)
from ywmessaging.config import Settings
from ywmessaging.messaging.simulator.events import envelope

BRAND = {"legal_name": "Grace Community Church of Seattle", "display_name": "Grace Church",
         "ein": "91-1234567", "entity_type": "NON_PROFIT", "vertical": "NGO",
         "website": "https://grace.example.org", "address_line1": "100 Pine St",
         "city": "Seattle", "state": "WA", "postal_code": "98101", "phone": "+12065550100",
         "email": "office@grace.example.org"}
CAMPAIGN = {
    "usecase": "MIXED",
    "description": "Service times, event reminders and prayer requests for members of Grace "
                   "Church who gave their number to the church office.",
    "message_flow": "Members opt in on the church's paper or web membership form, which says "
                    "they will receive texts and how to stop them.",
    "sample_messages": ["Grace Church: Sunday service moves to 10am this week. Reply STOP to "
                        "opt out.", "Grace Church: the youth retreat sign-up closes Friday. "
                        "Reply HELP for help."],
}


async def compliance(sending: Sending, church: Church) -> dict[str, Any]:
    """GET /church/compliance (asserting 200)."""
    resp = await sending.client.get("/api/v1/church/compliance", headers=church.auth)
    doc: dict[str, Any] = await resp.json()
    assert resp.status == 200, doc
    return doc


async def submit(sending: Sending, church: Church, what: str, body: dict[str, Any],
                 status: int = 202) -> dict[str, Any]:
    """POST /church/compliance/{what}, asserting the status."""
    resp = await sending.client.post(f"/api/v1/church/compliance/{what}", json=body,
                                     headers=church.auth)
    doc: dict[str, Any] = await resp.json(content_type=None)
    assert resp.status == status, doc
    return doc


async def sim_move(sending: Sending, kind: str, carrier_id: str,
                   **body: Any) -> dict[str, Any]:
    """Move a brand or campaign in the simulator (its webhook delivered unless told not)."""
    async with sending.client.session.post(
            f"{sending.sim.base_url}/sim/10dlc/{kind}/{carrier_id}", json=body) as resp:
        doc = await resp.json()
        assert resp.status == 200, doc
    data: dict[str, Any] = doc["data"]
    return data


async def until_status(sending: Sending, church: Church, kind: str, status: str) -> Any:
    """Wait until the compliance view shows `kind` (brand or campaign) in `status`."""
    async def check() -> Any:
        doc = await compliance(sending, church)
        return doc if doc[kind]["status"] == status else None
    return await wait_until(check)


async def approved_campaign(sending: Sending, church: Church) -> str:
    """Brand and campaign registered and approved through signed webhooks; the campaign id."""
    brand_id = (await submit(sending, church, "brand", BRAND))["brand"]["brand_id"]
    await sim_move(sending, "brand", brand_id, status="approved")
    await until_status(sending, church, "brand", "approved")
    campaign_id = (await submit(sending, church, "campaign", CAMPAIGN))["campaign"][
        "campaign_id"]
    await sim_move(sending, "campaign", campaign_id, status="MNO_PROVISIONED")
    await until_status(sending, church, "campaign", "approved")
    return str(campaign_id)


async def test_brand_moves_to_approved_through_a_signed_webhook(sending: Sending) -> None:
    church, _, _ = await sending.church()
    assert (await compliance(sending, church))["next_steps"][0]["code"] == "register_brand"
    doc = await submit(sending, church, "brand", BRAND)
    assert doc["brand"]["status"] == "pending"
    assert doc["next_steps"][0]["code"] == "wait_for_brand"
    brand_id = doc["brand"]["brand_id"]
    sent = sending.sim.state.brands[brand_id]
    assert (sent["ein"], sent["companyName"], sent["entityType"], sent["vertical"],
            sent["postalCode"]) == ("911234567", BRAND["legal_name"], "NON_PROFIT", "NGO",
                                    "98101")
    moved = await sim_move(sending, "brand", brand_id, status="approved")
    assert moved["status"] == 200   # the app acknowledged the signed webhook
    doc = await until_status(sending, church, "brand", "approved")
    assert doc["brand"]["identity_status"] == "VERIFIED"
    assert doc["next_steps"][0]["code"] == "submit_campaign"
    row = await inbox_row(sending.registry_conn, moved["event_id"])
    assert (row["state"], str(row["tenant_id"])) == ("done", church.tenant_id)
    profile = await (await sending.client.get("/api/v1/church", headers=church.auth)).json()
    assert profile["brand"]["status"] == "approved"
    assert profile["brand"]["ein"] == "**-***4567"
    # an older or repeated event changes nothing
    await sim_move(sending, "brand", brand_id, status="pending",
                   occurred_at="2020-01-01T00:00:00.000+00:00")
    assert (await compliance(sending, church))["brand"]["status"] == "approved"
    await submit(sending, church, "brand", BRAND, status=409)


async def test_a_rejected_brand_shows_why_and_is_corrected_not_duplicated(
        sending: Sending) -> None:
    church, _, _ = await sending.church()
    brand_id = (await submit(sending, church, "brand", BRAND))["brand"]["brand_id"]
    await submit(sending, church, "brand", BRAND, status=409)   # still pending
    await sim_move(sending, "brand", brand_id, status="rejected",
                   reasons="EIN does not match the legal name")
    doc = await until_status(sending, church, "brand", "rejected")
    assert doc["brand"]["rejection_reasons"] == "EIN does not match the legal name"
    assert doc["next_steps"][0]["code"] == "fix_brand"
    await submit(sending, church, "campaign", CAMPAIGN, status=409)   # brand_not_approved
    fixed = await submit(sending, church, "brand", {**BRAND, "legal_name": "Grace Church Inc"})
    assert (fixed["brand"]["status"], fixed["brand"]["brand_id"]) == ("pending", brand_id)
    assert fixed["brand"]["rejection_reasons"] is None
    assert len(sending.sim.state.brands) == 1
    assert sending.sim.state.brands[brand_id]["companyName"] == "Grace Church Inc"


async def test_brand_details_are_refused_field_by_field(sending: Sending) -> None:
    church, _, _ = await sending.church()
    bad = {**BRAND, "state": "Washington", "website": "not a site", "entity_type": "CHURCH"}
    del bad["ein"]
    body = await problem(await sending.client.post(
        "/api/v1/church/compliance/brand", json=bad, headers=church.auth),
        422, "validation_failed")
    fields = {e["field"] for e in body["errors"]}
    assert {"ein", "state", "website", "entity_type"} <= fields, body
    assert sending.sim.state.brands == {}
    assert (await compliance(sending, church))["brand"]["status"] == "not_registered"


async def test_an_approved_campaign_gets_the_church_number(
        sending: Sending, send_settings: Settings) -> None:
    church, number, _ = await sending.church()
    campaign_id = await approved_campaign(sending, church)
    sent = sending.sim.state.campaigns[campaign_id]
    assert sent["sample1"].startswith("Grace Church") and sent["helpMessage"]
    async with running_worker(sending.client, send_settings, run=False) as worker:
        assert (await worker.tendlc_round()).get("assigned") == 1
        assert (await worker.tendlc_round()) == {}   # nothing left to do
    assert sending.sim.state.assignments[number]["campaignId"] == campaign_id

    async def assigned() -> bool:
        doc = await compliance(sending, church)
        return bool(doc["campaign"]["number"] == {"phone_number": number,
                                                   "status": "assigned"})
    await wait_until(assigned)
    assert (await compliance(sending, church))["next_steps"] == []


async def test_a_suspended_campaign_stops_sends_and_holds_rows_but_stop_works(
        sending: Sending, send_settings: Settings) -> None:
    church, number, phones = await sending.church(members=3)
    campaign_id = await approved_campaign(sending, church)
    waiting = await sending.broadcast(church, {"body": "Before the suspension",
                                               "target": {"all": True}})
    await sim_move(sending, "campaign", campaign_id, status="TCR_SUSPENDED",
                   reasons="Spam complaints from T-Mobile subscribers")
    doc = await until_status(sending, church, "campaign", "suspended")
    assert doc["sending"] == {"allowed": False, "reason": "campaign_suspended"}
    assert doc["campaign"]["rejection_reasons"] == "Spam complaints from T-Mobile subscribers"
    assert doc["next_steps"][0]["code"] == "appeal_campaign"
    body = await problem(await sending.client.post(
        "/api/v1/broadcasts", headers=church.auth,
        json={"body": "Hello", "target": {"all": True}}), 423, "campaign_suspended")
    assert body["reason"] == "suspended"
    # every other way of sending is refused the same way: a staff-started conversation, a reply
    member = (await (await sending.client.get("/api/v1/members", headers=church.auth)).json())[
        "items"][1]["id"]
    await problem(await sending.client.post(
        "/api/v1/conversations", headers=church.auth,
        json={"member_id": member, "body": "Hello"}), 423, "campaign_suspended")
    await sim_inbound(sending.client, sending.sim, phones[2], number, "Are we meeting?")

    async def conversation() -> Any:
        items = (await (await sending.client.get("/api/v1/conversations",
                                                 headers=church.auth)).json())["items"]
        return items[0]["id"] if items else None

    cid = await wait_until(conversation)
    await problem(await sending.client.post(
        f"/api/v1/conversations/{cid}/messages", headers=church.auth,
        json={"body": "Yes, at 10"}), 423, "campaign_suspended")
    async with sending.db(church) as db:
        stop_reply = await db.fetchval("SELECT stop_reply FROM settings")
        await sim_inbound(sending.client, sending.sim, phones[0], number, "STOP")
        await wait_until(lambda: db.fetchval(
            "SELECT opt_in = 'opted_out' FROM members WHERE phone = $1", phones[0]))
        async with running_worker(sending.client, send_settings, run=False) as worker:
            await worker.drain_all()
            # the STOP confirmation went; the broadcast's rows wait, queued, not failed
            assert [m["text"] for m in sending.sim.state.messages] == [stop_reply]
            assert sim_numbers(sending.sim) == [phones[0]]
            assert await outbox_states(db, waiting["id"]) == {"queued": 3}
            await sim_move(sending, "campaign", campaign_id, status="MNO_PROVISIONED")
            await until_status(sending, church, "campaign", "approved")
            await worker.drain_all()
            states = await outbox_states(db, waiting["id"])
            assert states.get("skipped") == 1 and "queued" not in states, states
    assert sorted(sim_numbers(sending.sim)) == sorted(phones)


async def test_the_poll_settles_a_brand_whose_webhook_never_came(
        sending: Sending, send_settings: Settings) -> None:
    church, _, _ = await sending.church()
    brand_id = (await submit(sending, church, "brand", BRAND))["brand"]["brand_id"]
    moved = await sim_move(sending, "brand", brand_id, status="approved", webhook=False)
    assert moved["status"] is None
    assert (await compliance(sending, church))["brand"]["status"] == "pending"
    async with running_worker(sending.client, send_settings, run=False) as worker:
        assert (await worker.tendlc_round()).get("approved") == 1
    assert (await compliance(sending, church))["brand"]["status"] == "approved"
    state = await sending.registry_conn.fetchval(
        "SELECT status FROM tendlc_registrations WHERE carrier_id = $1", brand_id)
    assert state == "approved"


async def test_another_church_neither_sees_nor_is_affected(
        sending: Sending, send_settings: Settings) -> None:
    church, _, _ = await sending.church()
    other, _, _ = await sending.church(members=1)
    campaign_id = await approved_campaign(sending, church)
    await sim_move(sending, "campaign", campaign_id, status="TCR_SUSPENDED")
    await until_status(sending, church, "campaign", "suspended")
    doc = await compliance(sending, other)
    assert (doc["brand"]["status"], doc["campaign"]["status"], doc["sending"]["allowed"]) == \
        ("not_registered", "not_submitted", True)
    await sending.broadcast(other, {"body": "Still sending", "target": {"all": True}})
    # an event naming an id no church registered changes nothing and is kept for a retry
    event = envelope("10dlc.brand.update", {"brandId": str(uuid.uuid4()), "status": "success",
                                            "identityStatus": "VERIFIED"})
    assert (await post_signed(sending.client, sending.sim, event)).status == 200

    async def settled() -> Any:
        row = await inbox_row(sending.registry_conn, event["data"]["id"])
        return row if row is not None and row["state"] == "failed" else None
    row = await wait_until(settled)
    assert (row["last_error"], row["tenant_id"]) == ("unknown_registration", None)
    assert (await compliance(sending, other))["brand"]["status"] == "not_registered"


async def test_a_carrier_refusal_leaves_nothing_registered(sending: Sending) -> None:
    church, _, _ = await sending.church()
    sending.sim.state.api_key = "another-account"   # the carrier answers 401 to our key
    await problem(await sending.client.post(
        "/api/v1/church/compliance/brand", json=BRAND, headers=church.auth),
        422, "carrier_refused")
    doc = await compliance(sending, church)
    assert (doc["brand"]["status"], doc["next_steps"][0]["code"]) == ("not_registered",
                                                                      "register_brand")
    sending.sim.state.api_key = None
    assert (await submit(sending, church, "brand", BRAND))["brand"]["status"] == "pending"
    assert len(sending.sim.state.brands) == 1


async def test_the_poll_notices_a_suspension_whose_webhook_was_lost(
        sending: Sending, send_settings: Settings) -> None:
    church, _, _ = await sending.church()
    campaign_id = await approved_campaign(sending, church)
    async with running_worker(sending.client, send_settings, run=False) as worker:
        await worker.tendlc_round()   # reads the campaign, assigns the number
        await sim_move(sending, "campaign", campaign_id, status="TCR_SUSPENDED",
                       webhook=False)
        assert (await worker.tendlc_round()) == {}   # asked about a moment ago
        assert (await compliance(sending, church))["sending"]["allowed"] is True
        await sending.registry_conn.execute(   # the poll interval has passed
            "UPDATE tendlc_registrations SET checked_at = now() - interval '1 hour' "
            "WHERE carrier_id = $1", campaign_id)
        assert (await worker.tendlc_round()) == {"suspended": 1}
    doc = await compliance(sending, church)
    assert doc["sending"] == {"allowed": False, "reason": "campaign_suspended"}
