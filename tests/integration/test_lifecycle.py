"""A church's life end to end (issue 12 parts 1 and 2), against the carrier and Stripe
simulators over real HTTP: an operator's suspension stops sending but keeps opt-outs and
leaves billing, export and deletion open; billing suspends and resumes by itself; the owner
schedules and cancels a deletion; a due deletion tears everything down, resumes after a crash
between steps and after a carrier fault, and leaves no way in."""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.auth_fixtures import problem, read_outbox, register
from tests.integration.carrier_sim_fixtures import sim_inbound
from tests.integration.sending_fixtures import *  # noqa: F403
from tests.integration.sending_fixtures import Sending, outbox_states, running_worker, wait_until
from tests.integration.stripe_sim_fixtures import (
    billing,
    catalogue_prices,
    sim_post,
    stripe_settings,
    stripe_sim,
)
from ywmessaging.auth import mfa
from ywmessaging.billing.simulator import RunningStripeSim
from ywmessaging.church import exports
from ywmessaging.commands import lifecycle as cli
from ywmessaging.errors import ConfigError
from ywmessaging.keys import REGISTRY_POOL
from ywmessaging.ops import lifecycle_rounds
from ywmessaging.ops.teardown import TeardownInProgress

__all__ = ["billing", "catalogue_prices", "stripe_settings", "stripe_sim"]


@pytest.fixture
def send_overrides(stripe_sim: RunningStripeSim, tmp_path_factory: Any) -> dict[str, Any]:
    """The app talks to this test's Stripe simulator and trusts its secret."""
    return {"stripe_api_base": stripe_sim.base_url, "stripe_timeout": 2.0,
            "stripe_max_retries": 0, "stripe_webhook_secret": stripe_sim.webhook_secret,
            "billing_grace_days": 0.0, "webhook_sweep_interval": 0.2,
            "export_dir": Path(tmp_path_factory.mktemp("exports"))}


@pytest.fixture
async def paying(sending: Sending, stripe_sim: RunningStripeSim,
                 catalogue_prices: dict[str, str]) -> Sending:
    """The sending fixtures with the Stripe simulator's webhooks going to this test's app."""
    stripe_sim.set_webhook_url(str(sending.client.make_url("/webhooks/stripe")))
    return sending


async def _json(resp: Any, status: int) -> Any:
    doc = await resp.json(content_type=None)
    assert resp.status == status, doc
    return doc


def _ns(tenant: str, **kw: Any) -> argparse.Namespace:
    base = {"tenant": tenant, "reason": None, "by": "alice", "now": True, "yes": True}
    return argparse.Namespace(**{**base, **kw})


async def _status_is(paying: Sending, church: Any, path: str, status: int) -> bool:
    resp = await paying.client.get(path, headers=church.auth)
    await resp.read()
    return resp.status == status


async def _pay(paying: Sending, sim: RunningStripeSim, church: Any) -> Any:
    """Checkout and pay for growth; wait until the app applied the subscription; its row."""
    session = await _json(await paying.client.post(
        "/api/v1/billing/checkout", headers=church.auth,
        json={"plan": "growth", "cycle": "monthly"}), 200)
    done = await sim_post(sim, f"/sim/checkout/{session['session_id']}/complete")
    assert await sim.sender.idle(5.0)

    async def applied() -> Any:
        row = await paying.registry_conn.fetchrow(
            "SELECT status, suspended_by, stripe_subscription_id FROM tenants WHERE id = $1",
            uuid.UUID(church.tenant_id))
        return row if row["stripe_subscription_id"] == done["subscription"]["id"] else None

    return await wait_until(applied)


async def _transitions(paying: Sending, church: Any) -> list[tuple[str, str, str | None]]:
    rows = await paying.registry_conn.fetch(
        "SELECT action, actor, reason FROM tenant_transitions WHERE tenant_id = $1 ORDER BY id",
        uuid.UUID(church.tenant_id))
    return [(r["action"], r["actor"], r["reason"]) for r in rows]


async def test_suspension_stops_sending_and_keeps_opt_outs(paying: Sending) -> None:
    church, number, phones = await paying.church(members=3)
    bc = await paying.broadcast(church, {"body": "Service at 10", "target": {"all": True}})
    settings = paying.settings
    assert await cli.suspend(_ns(church.tenant_id, reason="spam complaints"), settings) == 0
    await wait_until(lambda: _status_is(paying, church, "/api/v1/members", 423))
    refused = await paying.client.get("/api/v1/members", headers=church.auth)
    assert (await refused.json())["code"] == "tenant_suspended"
    for path in ("/api/v1/billing/plan", "/api/v1/account/exports", "/api/v1/account/deletion"):
        assert await _status_is(paying, church, path, 200), path
    # the church may still take its data away: the export job runs while it is suspended
    job = await _json(await paying.client.post("/api/v1/account/export", headers=church.auth),
                      202)

    async def exported() -> bool:
        items = (await _json(await paying.client.get("/api/v1/account/exports",
                                                     headers=church.auth), 200))["items"]
        return [(i["id"], i["status"]) for i in items] == [(job["id"], "done")]

    await wait_until(exported)
    # the session goes on (refresh), so the owner can still pay; login names the suspension
    tokens = await _json(await paying.client.post("/api/v1/auth/refresh",
                                                  json={"refresh_token": church.refresh}), 200)
    church.access, church.refresh = tokens["access_token"], tokens["refresh_token"]
    assert await _status_is(paying, church, "/api/v1/billing/plan", 200)
    signed_in = await paying.client.post("/api/v1/auth/login", json={   # the owner, to pay
        "email": church.email, "password": church.password})
    assert signed_in.status == 200, await signed_in.text()

    async with running_worker(paying.client, settings, run=False) as worker:
        await worker.drain_all()
    assert paying.sim.state.messages == []                       # nothing sent
    async with paying.db(church) as db:
        assert await outbox_states(db, bc["id"]) == {"queued": 3}

    await sim_inbound(paying.client, paying.sim, phones[0], number, "STOP")

    async def opted_out() -> bool:
        async with paying.db(church) as db:
            return await db.fetchval("SELECT opt_in FROM members WHERE phone = $1",
                                     phones[0]) == "opted_out"

    await wait_until(opted_out)
    async with paying.db(church) as db:   # recorded, and no reply queued (nothing is sent)
        assert await db.fetchval("SELECT count(*) FROM consent_events") >= 1
        assert await outbox_states(db) == {"queued": 3}
    assert await _transitions(paying, church) == [
        ("suspend", "operator:alice", "spam complaints")]

    assert await cli.resume(_ns(church.tenant_id, reason="resolved"), settings) == 0
    await wait_until(lambda: _status_is(paying, church, "/api/v1/members", 200))
    async with running_worker(paying.client, settings, run=False) as worker:
        await worker.drain_all()
    async with paying.db(church) as db:       # the opted-out member is skipped
        states = await outbox_states(db, bc["id"])
    assert states.get("queued", 0) == 0 and phones[0] not in [
        m["to"][0]["phone_number"] for m in paying.sim.state.messages]
    assert [t[0] for t in await _transitions(paying, church)] == ["suspend", "resume"]


async def test_billing_suspends_and_a_payment_resumes(paying: Sending,
                                                      stripe_sim: RunningStripeSim) -> None:
    church, _, _ = await paying.church()
    tid = uuid.UUID(church.tenant_id)
    pool = paying.client.server.app[REGISTRY_POOL]
    settings = paying.settings
    await paying.registry_conn.execute(
        "UPDATE tenants SET trial_ends_at = now() - interval '10 days' WHERE id = $1", tid)
    now = datetime.now(UTC)
    assert tid not in await lifecycle_rounds.suspend_lapsed(pool, settings, now)  # 10 < 30 days
    await paying.registry_conn.execute(
        "UPDATE tenants SET trial_ends_at = now() - interval '31 days' WHERE id = $1", tid)
    assert tid in await lifecycle_rounds.suspend_lapsed(pool, settings, now)
    assert await paying.registry_conn.fetchval(
        "SELECT suspended_by FROM tenants WHERE id = $1", tid) == "billing"
    await wait_until(lambda: _status_is(paying, church, "/api/v1/members", 423))

    row = await _pay(paying, stripe_sim, church)     # billing stays open while suspended
    assert (row["status"], row["suspended_by"]) == ("active", None)
    await wait_until(lambda: _status_is(paying, church, "/api/v1/members", 200))
    actions = [(a, who) for a, who, _ in await _transitions(paying, church)]
    assert actions == [("suspend", "billing"), ("resume", "billing")]


async def test_an_operators_suspension_waits_for_an_operator(
        paying: Sending, stripe_sim: RunningStripeSim) -> None:
    church, _, _ = await paying.church()
    assert await cli.suspend(_ns(church.tenant_id, reason="fraud check"), paying.settings) == 0
    row = await _pay(paying, stripe_sim, church)
    assert (row["status"], row["suspended_by"]) == ("suspended", "operator")


async def test_owner_schedules_and_cancels_the_deletion(paying: Sending, outbox: Path) -> None:
    from tests.integration.test_auth_admins import _invite as invite_and_accept

    church, _, _ = await paying.church()
    helper = await invite_and_accept(paying.client, church, outbox)   # told too
    url = "/api/v1/account/deletion"
    shown = await _json(await paying.client.get(url, headers=church.auth), 200)
    assert shown == {"scheduled": False, "due_at": None, "status": "active"}
    wrong = await _json(await paying.client.post(url, headers=church.auth,
                                                 json={"password": "not it at all"}), 403)
    assert wrong["code"] == "invalid_current_password"
    done = await _json(await paying.client.post(url, headers=church.auth,
                                                json={"password": church.password}), 202)
    due = datetime.fromisoformat(done["due_at"])
    assert done["scheduled"] and timedelta(days=29.9) < due - datetime.now(UTC) \
        < timedelta(days=30.1)
    for who in (church.email, helper["email"]):
        assert read_outbox(outbox, "deletion_scheduled", who), who
    again = await _json(await paying.client.post(url, headers=church.auth,
                                                 json={"password": church.password}), 202)
    assert again["due_at"] == done["due_at"]                      # the date is kept
    resp = await paying.client.delete(url, headers=church.auth)
    assert resp.status == 204
    for who in (church.email, helper["email"]):
        assert read_outbox(outbox, "deletion_canceled", who), who
    assert (await _json(await paying.client.get(url, headers=church.auth), 200))[
        "scheduled"] is False
    gone = await _json(await paying.client.delete(url, headers=church.auth), 404)
    assert gone["code"] == "deletion_not_scheduled"
    assert [a for a, _, _ in await _transitions(paying, church)] == [
        "deletion_scheduled", "deletion_canceled"]


class Crash(Exception):
    """Raised between two teardown steps (a process dying there)."""


async def test_teardown_resumes_after_a_crash_and_leaves_no_way_in(
        paying: Sending, stripe_sim: RunningStripeSim) -> None:
    church, number, phones = await paying.church(members=1)
    tid = uuid.UUID(church.tenant_id)
    reg, settings = paying.registry_conn, paying.settings
    row = await _pay(paying, stripe_sim, church)
    await sim_inbound(paying.client, paying.sim, phones[0], number, "Hello")  # an inbox row
    await reg.execute("INSERT INTO tendlc_registrations (carrier_id, kind, tenant_id) "
                      "VALUES ($1, 'brand', $2)", f"brand-{tid.hex[:12]}", tid)
    folder = exports.folder(settings, tid)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{uuid.uuid4()}.zip").write_bytes(b"PK")
    db_name, role = await reg.fetchrow("SELECT db_name, db_role FROM tenants WHERE id = $1",
                                       tid)
    await _json(await paying.client.post("/api/v1/account/deletion", headers=church.auth,
                                         json={"password": church.password}), 202)
    await reg.execute("UPDATE tenants SET deletion_due_at = now() - interval '1 minute' "
                      "WHERE id = $1", tid)

    # 1. the carrier fails the release: the round fails the church, nothing is lost
    await paying.fault(kind="release_error", count=10)
    async with running_worker(paying.client, settings, run=False) as worker:
        first = await worker.lifecycle_round()
    assert first.failed == [tid]
    assert await reg.fetchval("SELECT teardown_step FROM tenants WHERE id = $1", tid) == "stripe"
    assert await reg.fetchval("SELECT count(*) FROM phone_numbers WHERE tenant_id = $1", tid) == 1
    subscription = stripe_sim.state.get("subscription", row["stripe_subscription_id"])
    assert subscription["status"] == "canceled"
    await wait_until(lambda: _status_is(paying, church, "/api/v1/members", 404))
    async with paying.client.session.delete(f"{paying.sim.base_url}/sim/faults") as resp:
        assert resp.status < 300

    # 2. a crash between two steps: the next run starts after the last finished one
    async def crash(_tid: uuid.UUID, step: str) -> None:
        if step == "logins":
            raise Crash(step)

    async with running_worker(paying.client, settings, run=False) as worker:
        second = await worker.lifecycle_round(after_step=crash)
        assert second.failed == [tid]
        assert await reg.fetchval("SELECT teardown_step FROM tenants WHERE id = $1",
                                  tid) == "logins"
        assert await reg.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1",
                                  db_name) == 1
        ran: list[str] = []

        async def note(_tid: uuid.UUID, step: str) -> None:
            ran.append(step)

        third = await worker.lifecycle_round(after_step=note)
    assert third.deleted == [tid]
    assert ran == ["inbox", "exports", "database", "role", "tombstone"]   # after `logins` only

    # 3. nothing is left but an anonymous tombstone
    tomb = await reg.fetchrow("SELECT * FROM tenants WHERE id = $1", tid)
    assert (tomb["status"], tomb["name"], tomb["stripe_customer_id"],
            tomb["stripe_subscription_id"], bytes(tomb["db_password_enc"])) == (
        "deleted", "deleted", None, None, b"")
    assert church.email not in orjson.dumps(dict(tomb), default=str).decode()
    for table in ("phone_numbers", "admin_logins", "tendlc_registrations", "webhook_inbox",
                  "tenant_work"):
        assert await reg.fetchval(f"SELECT count(*) FROM {table} WHERE tenant_id = $1",
                                  tid) == 0, table
    assert await reg.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1",
                              db_name) == 0
    assert await reg.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", role) == 0
    assert not folder.exists()
    assert paying.sim.state.number(number) is None           # released at the carrier
    actions = [a for a, _, _ in await _transitions(paying, church)]
    assert actions == ["deletion_scheduled", "teardown_started", "deleted"]

    # 4. no way in: old tokens, login; the email signs up anew as a new church
    old = await paying.client.get("/api/v1/auth/me", headers=church.auth)
    await problem(old, 404, "tenant_not_found")
    refreshed = await paying.client.post("/api/v1/auth/refresh",
                                         json={"refresh_token": church.refresh})
    assert refreshed.status == 401, await refreshed.text()
    assert (await refreshed.json())["code"] == "invalid_refresh_token"
    login = await paying.client.post("/api/v1/auth/login", json={
        "email": church.email, "password": church.password})
    await problem(login, 401, "invalid_credentials")
    anew = await register(paying.client, email_addr=church.email)
    assert anew.tenant_id != church.tenant_id
    assert await _status_is(paying, anew, "/api/v1/members", 200)


async def test_a_deletion_cancelled_during_the_round_does_not_happen(paying: Sending) -> None:
    """The round lists the churches due, then tears them down one by one: an owner who
    cancels meanwhile keeps the church (checked again under the row's lock)."""
    first, _, _ = await paying.church()
    second, _, _ = await paying.church()
    for church in (first, second):
        await _json(await paying.client.post("/api/v1/account/deletion", headers=church.auth,
                                             json={"password": church.password}), 202)
        await paying.registry_conn.execute(
            "UPDATE tenants SET deletion_due_at = now() - interval '1 minute' WHERE id = $1",
            uuid.UUID(church.tenant_id))

    async def cancel_second(tid: uuid.UUID, step: str) -> None:
        if step == "stripe" and str(tid) != second.tenant_id:
            resp = await paying.client.delete("/api/v1/account/deletion", headers=second.auth)
            assert resp.status == 204, await resp.text()

    async with running_worker(paying.client, paying.settings, run=False) as worker:
        done = await worker.lifecycle_round(after_step=cancel_second)
    assert uuid.UUID(first.tenant_id) in done.deleted
    assert uuid.UUID(second.tenant_id) not in done.deleted
    assert await paying.registry_conn.fetchval(
        "SELECT status FROM tenants WHERE id = $1", uuid.UUID(second.tenant_id)) == "active"
    assert await _status_is(paying, second, "/api/v1/members", 200)


async def test_operator_deletes_now(paying: Sending) -> None:
    church, number, _ = await paying.church()
    tid = uuid.UUID(church.tenant_id)
    for refused in (_ns(church.tenant_id, now=False), _ns(church.tenant_id, yes=False)):
        with pytest.raises(ConfigError):        # no --now; no --yes and no terminal to ask
            await cli.delete(refused, paying.settings)
    assert await paying.registry_conn.fetchval(
        "SELECT status FROM tenants WHERE id = $1", tid) == "active"
    claim = "UPDATE tenants SET teardown_owner = 'other', teardown_claimed_until = {} WHERE id = $1"
    await paying.registry_conn.execute(claim.format("now() + interval '1 minute'"), tid)
    with pytest.raises(TeardownInProgress):     # another process is at it: one at a time
        await cli.delete(_ns(church.tenant_id), paying.settings)
    await paying.registry_conn.execute(claim.format("now() - interval '1 second'"), tid)
    assert await cli.delete(_ns(church.tenant_id), paying.settings) == 0
    assert await paying.registry_conn.fetchval(
        "SELECT status FROM tenants WHERE id = $1", tid) == "deleted"
    assert paying.sim.state.number(number) is None
    assert await cli.delete(_ns(church.tenant_id), paying.settings) == 0   # idempotent


async def test_deletion_needs_the_mfa_code_when_mfa_is_on(paying: Sending) -> None:
    client = paying.client
    church = await register(client)
    pw = {"password": church.password}
    setup = await _json(await client.post("/api/v1/auth/mfa/setup", headers=church.auth,
                                          json=pw), 200)
    code = mfa.totp_at(setup["secret"], mfa.current_step(time.time()))
    enabled = await _json(await client.post("/api/v1/auth/mfa/enable", headers=church.auth,
                                            json={"code": code, **pw}), 200)
    tokens = await _json(await client.post("/api/v1/auth/refresh",
                                           json={"refresh_token": church.refresh}), 200)
    church.access = tokens["access_token"]
    url = "/api/v1/account/deletion"
    for body in (pw, {**pw, "code": "000000"}, {"password": "wrong password!", "code": code}):
        await problem(await client.post(url, headers=church.auth, json=body), 403,
                      "invalid_password_or_code")
    done = await _json(await client.post(url, headers=church.auth, json={
        **pw, "code": enabled["recovery_codes"][0]}), 202)
    assert done["scheduled"] is True
