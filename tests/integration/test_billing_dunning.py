"""Trial and dunning against a real registry and the carrier simulator: the trial's end and an
overdue payment stop sending (402 `subscription_inactive`) while reads, export and STOP keep
working; the worker leaves the church's rows queued and sends them once it is active again;
apply_subscription never goes back to an older state; the trial-ending email goes once."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tests.integration.auth_fixtures import Church
from tests.integration.sending_fixtures import *  # noqa: F403
from tests.integration.sending_fixtures import (
    Sending,
    outbox_states,
    problem,
    running_worker,
    sim_inbound,
    sim_numbers,
    wait_until,
)
from ywmessaging.auth.emails import MemoryEmailSender
from ywmessaging.billing import notices
from ywmessaging.billing.state import BillingState, entitlement, history, set_state
from ywmessaging.billing.subscriptions import Snapshot, apply_subscription
from ywmessaging.config import Settings
from ywmessaging.tenants.keys import SUPERVISOR

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def _snap(tid: uuid.UUID, status: str, period_end: datetime, *, sub: str = "a",
          plan: str = "growth", created: datetime = CREATED, cancel: bool = False) -> Snapshot:
    return Snapshot(subscription_id=f"sub_{sub}_{tid.hex}", customer_id=f"cus_{tid.hex}",
                    status=status, created=created, plan=plan, cycle="monthly",
                    current_period_end=period_end, cancel_at_period_end=cancel)


async def _state(registry_conn: Any, settings: Settings, church: Church) -> BillingState:
    return (await entitlement(registry_conn, settings, uuid.UUID(church.tenant_id),
                              datetime.now(UTC))).state


async def _end_trial(registry_conn: Any, settings: Settings, church: Church) -> None:
    old = await _state(registry_conn, settings, church)
    async with registry_conn.transaction():
        await set_state(registry_conn, settings, uuid.UUID(church.tenant_id),
                        replace(old, trial_ends_at=datetime.now(UTC) - timedelta(minutes=1)),
                        source="operator")


async def _send(sending: Sending, church: Church) -> Any:
    return await sending.client.post("/api/v1/broadcasts", headers=church.auth,
                                     json={"body": "Hello", "target": {"all": True}})


async def test_trial_end_stops_sending_but_reads_export_and_stop_work(
        sending: Sending, send_settings: Settings, registry_conn: Any) -> None:
    church, number, phones = await sending.church(members=3)
    waiting = await sending.broadcast(church, {"body": "Queued in the trial",
                                               "target": {"all": True}})
    await _end_trial(registry_conn, send_settings, church)
    body = await problem(await _send(sending, church), 402, "subscription_inactive")
    assert body["reason"] == "trial_ended"
    rule = {"name": "Weekly", "body": "Hi", "target": {"all": True}, "frequency": "weekly",
            "local_time": "09:00", "days_of_week": ["sunday"]}
    await problem(await sending.client.post("/api/v1/recurring", headers=church.auth,
                                            json=rule), 402, "subscription_inactive")
    for path in ("/api/v1/members", "/api/v1/members/export", "/api/v1/broadcasts",
                 "/api/v1/billing/plan"):
        assert (await sending.client.get(path, headers=church.auth)).status == 200, path
    plan = await (await sending.client.get("/api/v1/billing/plan", headers=church.auth)).json()
    assert (plan["sending"], plan["sending_stopped_reason"]) == (False, "trial_ended")
    async with sending.db(church) as db:
        stop_reply = await db.fetchval("SELECT stop_reply FROM settings")
        await sim_inbound(sending.client, sending.sim, phones[0], number, "STOP")
        await wait_until(lambda: db.fetchval(
            "SELECT opt_in = 'opted_out' FROM members WHERE phone = $1", phones[0]))
        async with running_worker(sending.client, send_settings, run=False) as worker:
            await worker.drain_all()
            # the STOP confirmation went; the broadcast's rows wait, queued, not failed
            assert sim_numbers(sending.sim) == [phones[0]]
            assert [m["text"] for m in sending.sim.state.messages] == [stop_reply]
            assert await outbox_states(db, waiting["id"]) == {"queued": 3}
            assert await apply_subscription(
                registry_conn, send_settings, uuid.UUID(church.tenant_id),
                _snap(uuid.UUID(church.tenant_id), "active",
                      datetime.now(UTC) + timedelta(days=30)), "evt_paid")
            await worker.drain_all()
            await wait_until(lambda: outbox_states(db, waiting["id"]), timeout=10)
            states = await outbox_states(db, waiting["id"])
            assert states.get("skipped") == 1 and "queued" not in states, states
    assert sorted(sim_numbers(sending.sim)) == sorted([phones[0], phones[1], phones[2]])
    assert (await _send(sending, church)).status == 201


async def test_past_due_beyond_grace_stops_and_a_later_active_snapshot_resumes(
        sending: Sending, send_settings: Settings, registry_conn: Any) -> None:
    church, _, _ = await sending.church(members=1)
    tid = uuid.UUID(church.tenant_id)
    end = datetime.now(UTC) + timedelta(days=20)
    assert await apply_subscription(registry_conn, send_settings, tid,
                                    _snap(tid, "active", end), "evt_1")
    assert (await _send(sending, church)).status == 201
    # the renewal's payment failed eight days ago (Stripe moves the period on at renewal):
    # past the seven days' grace
    renewed = end + timedelta(days=30)
    eight_days_ago = datetime.now(UTC) - timedelta(days=8)
    assert await apply_subscription(registry_conn, send_settings, tid,
                                    _snap(tid, "past_due", renewed), "evt_2", now=eight_days_ago)
    body = await problem(await _send(sending, church), 402, "subscription_inactive")
    assert body["reason"] == "past_due"
    # the same period paid at last
    assert await apply_subscription(registry_conn, send_settings, tid,
                                    _snap(tid, "active", renewed), "evt_3")
    assert (await _send(sending, church)).status == 201
    # the next renewal fails now: within the grace, sending goes on
    later = renewed + timedelta(days=30)
    assert await apply_subscription(registry_conn, send_settings, tid,
                                    _snap(tid, "past_due", later), "evt_4")
    assert (await _send(sending, church)).status == 201
    st = await _state(registry_conn, send_settings, church)
    assert st.past_due_since is not None
    assert datetime.now(UTC) - st.past_due_since < timedelta(minutes=1)


async def test_apply_subscription_never_goes_back_and_records_each_change(
        sending: Sending, send_settings: Settings, registry_conn: Any) -> None:
    church, _, _ = await sending.church()
    tid = uuid.UUID(church.tenant_id)
    p1 = datetime(2030, 1, 1, tzinfo=UTC)
    p2 = datetime(2030, 2, 1, tzinfo=UTC)
    assert await apply_subscription(registry_conn, send_settings, tid,
                                    _snap(tid, "active", p2, plan="pro"), "evt_new")
    # older: an earlier period, a lower rank in the same period, an older subscription
    assert not await apply_subscription(registry_conn, send_settings, tid,
                                        _snap(tid, "past_due", p1), "evt_old_period")
    assert not await apply_subscription(registry_conn, send_settings, tid,
                                        _snap(tid, "incomplete", p2), "evt_old_status")
    assert not await apply_subscription(
        registry_conn, send_settings, tid,
        _snap(tid, "active", p2, sub="old", created=CREATED - timedelta(days=9)), "evt_old_sub")
    # a replay changes nothing and writes nothing
    assert not await apply_subscription(registry_conn, send_settings, tid,
                                        _snap(tid, "active", p2, plan="pro"), "evt_new")
    st = await _state(registry_conn, send_settings, church)
    assert (st.plan, st.subscription_status, st.current_period_end) == ("pro", "active", p2)
    assert (st.stripe_subscription_id, st.billing_cycle) == (f"sub_a_{tid.hex}", "monthly")
    # newer: the same period canceled at its end, then a newer subscription
    assert await apply_subscription(registry_conn, send_settings, tid,
                                    _snap(tid, "active", p2, plan="pro", cancel=True),
                                    "evt_cancel")
    assert await apply_subscription(
        registry_conn, send_settings, tid,
        _snap(tid, "active", p1, sub="b", plan="growth", created=CREATED + timedelta(days=1)),
        "evt_b")
    rows = await history(registry_conn, send_settings, tid)
    assert [(r["source"], r["event_id"]) for r in rows] == [
        ("signup", None), ("stripe", "evt_new"), ("stripe", "evt_cancel"), ("stripe", "evt_b")]
    assert [r["version"] for r in rows] == [1, 2, 3, 4]
    last = orjson.loads(rows[-1]["new_state"])
    first_change = orjson.loads(rows[1]["old_state"])
    assert (last["plan"], last["stripe_subscription_id"]) == ("growth", f"sub_b_{tid.hex}")
    assert first_change["subscription_status"] == "trialing"


async def test_canceled_stops_after_the_period_end(
        sending: Sending, send_settings: Settings, registry_conn: Any) -> None:
    church, _, _ = await sending.church(members=1)
    tid = uuid.UUID(church.tenant_id)
    soon = datetime.now(UTC) + timedelta(days=3)
    assert await apply_subscription(registry_conn, send_settings, tid,
                                    _snap(tid, "canceled", soon), "evt_c1")
    assert (await _send(sending, church)).status == 201          # paid until the period ends
    gone = datetime.now(UTC) - timedelta(minutes=1)
    assert await apply_subscription(registry_conn, send_settings, tid,
                                    _snap(tid, "canceled", gone, sub="z",
                                          created=CREATED + timedelta(days=2)), "evt_c2")
    body = await problem(await _send(sending, church), 402, "subscription_inactive")
    assert body["reason"] == "canceled"


async def test_trial_ending_email_goes_once(
        sending: Sending, send_settings: Settings, registry_conn: Any) -> None:
    church, _, _ = await sending.church()
    tid = uuid.UUID(church.tenant_id)
    old = await _state(registry_conn, send_settings, church)
    ends = datetime.now(UTC) + timedelta(days=2)
    async with registry_conn.transaction():
        await set_state(registry_conn, send_settings, tid, replace(old, trial_ends_at=ends),
                        source="operator")
    emails = MemoryEmailSender()
    lease = sending.client.server.app[SUPERVISOR].supervisor.lease
    now = datetime.now(UTC)
    await notices.send_trial_endings(registry_conn, lease, send_settings, emails, now)
    mine = [e for e in emails.sent if e.to == church.email]
    assert [e.kind for e in mine] == ["trial_ending"]
    assert f"{ends:%B %d, %Y}" in mine[0].body
    await notices.send_trial_endings(registry_conn, lease, send_settings, emails, now)
    assert len([e for e in emails.sent if e.to == church.email]) == 1
