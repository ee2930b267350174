"""Plan limits over HTTP: each limit hit and reported with {limit, used, plan}, a downgrade that
keeps data and blocks new creation, concurrent creations at the limit, an import that creates up
to the limit, and the plan and usage routes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Church, Client, church_db, problem, register
from ywmessaging.billing.limits import PlanLimitReached, reserve
from ywmessaging.billing.state import entitlement
from ywmessaging.billing.subscriptions import Snapshot, apply_subscription
from ywmessaging.config import Settings

SMALL = {"plans": [
    {"code": "starter", "name": "Starter", "monthly_cents": 4900, "annual_cents": 47040,
     "limits": {"branches": 1, "members": 3, "messages_per_month": 1000, "co_admins": 1}},
    {"code": "growth", "name": "Growth", "monthly_cents": 7900, "annual_cents": 75840,
     "limits": {"branches": 3, "members": 6, "messages_per_month": 5000, "co_admins": 3}},
    {"code": "pro", "name": "Pro", "monthly_cents": 12900, "annual_cents": 123840,
     "limits": {"branches": 10, "members": None, "messages_per_month": None, "co_admins": 3}},
]}


@pytest.fixture
def small_settings(api_settings: Settings, tmp_path: Path) -> Settings:
    """A deployment whose plans allow a few members and branches (the limits are reached fast)."""
    path = tmp_path / "plans.json"
    path.write_bytes(orjson.dumps(SMALL))
    return api_settings.with_(billing_catalogue=path)


@pytest.fixture
async def client(make_api_client: Any, small_settings: Settings) -> Client:
    """The app on the small catalogue."""
    c: Client = await make_api_client(small_settings)
    return c


async def _member(church: Church, n: int) -> Any:
    return await church.client.post("/api/v1/members", headers=church.auth, json={
        "first_name": "M", "last_name": str(n), "phone": f"+1312555{n:04d}"})


async def _branch(church: Church, name: str) -> Any:
    return await church.client.post("/api/v1/branches", headers=church.auth,
                                    json={"name": name})


async def _invite(church: Church) -> Any:
    return await church.client.post("/api/v1/admins", headers=church.auth, json={
        "email": f"helper-{uuid.uuid4().hex[:8]}@example.org", "first_name": "Hal",
        "last_name": "Helper"})


async def _refused(resp: Any, resource: str, limit: int, used: int, plan: str) -> None:
    body = await problem(resp, 402, "plan_limit_reached")
    assert (body["resource"], body["limit"], body["used"], body["plan"]) == (
        resource, limit, used, plan)


async def _subscribe(registry_conn: Any, settings: Settings, church: Church, plan: str, *,
                     period_end: int, event_id: str) -> bool:
    snap = Snapshot(subscription_id="sub_" + church.tenant_id,
                    customer_id="cus_" + church.tenant_id,
                    status="active", created=datetime(2026, 1, 1, tzinfo=UTC), plan=plan,
                    cycle="monthly",
                    current_period_end=datetime.fromtimestamp(period_end, UTC))
    return await apply_subscription(registry_conn, settings, uuid.UUID(church.tenant_id), snap,
                                    event_id)


async def test_each_limit_is_hit_and_reported(client: Client) -> None:
    church = await register(client)
    for n in range(3):
        assert (await _member(church, n)).status == 201
    await _refused(await _member(church, 3), "members", 3, 3, "starter")
    assert (await _branch(church, "North")).status == 201
    await _refused(await _branch(church, "South"), "branches", 1, 1, "starter")
    assert (await _invite(church)).status == 201
    await _refused(await _invite(church), "co_admins", 1, 1, "starter")
    # nothing of the refused ones was written; a taken phone is still 409 (not a creation)
    listing = await (await client.get("/api/v1/members", headers=church.auth)).json()
    assert len(listing["items"]) == 3
    admins = await (await client.get("/api/v1/admins", headers=church.auth)).json()
    assert len(admins["admins"]) == 2


async def test_a_downgrade_keeps_data_and_blocks_new_creation(
        client: Client, registry_conn: Any, small_settings: Settings) -> None:
    church = await register(client)
    assert await _subscribe(registry_conn, small_settings, church, "growth",
                            period_end=1_900_000_000, event_id="evt_up")
    for name in ("A", "B", "C"):
        assert (await _branch(church, name)).status == 201
    for n in range(5):
        assert (await _member(church, n)).status == 201
    assert await _subscribe(registry_conn, small_settings, church, "starter",
                            period_end=1_902_000_000, event_id="evt_down")
    branches = await (await client.get("/api/v1/branches", headers=church.auth)).json()
    assert len(branches["items"]) == 3                       # kept
    await _refused(await _branch(church, "D"), "branches", 1, 3, "starter")
    await _refused(await _member(church, 9), "members", 3, 5, "starter")
    # editing and deleting still work; deleting below the limit makes room again
    ids = [b["id"] for b in branches["items"]]
    for bid in ids[1:]:
        assert (await client.delete(f"/api/v1/branches/{bid}", headers=church.auth)).status == 204
    await _refused(await _branch(church, "E"), "branches", 1, 1, "starter")
    plan = await (await client.get("/api/v1/billing/plan", headers=church.auth)).json()
    assert plan["plan"]["code"] == "starter" and plan["usage"]["members"] == 5
    assert plan["remaining"]["members"] == 0


async def test_concurrent_creations_at_the_limit_do_not_both_pass(client: Client) -> None:
    church = await register(client)
    for n in range(2):
        assert (await _member(church, n)).status == 201
    answers = await asyncio.gather(*(_member(church, n) for n in range(10, 14)))
    assert sorted(r.status for r in answers) == [201, 402, 402, 402]
    branches = await asyncio.gather(*(_branch(church, f"B{n}") for n in range(3)))
    assert sorted(r.status for r in branches) == [201, 402, 402]
    invites = await asyncio.gather(*(_invite(church) for _ in range(3)))
    assert sorted(r.status for r in invites) == [201, 402, 402]
    listing = await (await client.get("/api/v1/members", headers=church.auth)).json()
    assert len(listing["items"]) == 3


async def test_an_import_creates_up_to_the_limit_and_refuses_the_rest_per_row(
        client: Client) -> None:
    church = await register(client)
    assert (await _member(church, 1)).status == 201
    csv = (b"first_name,last_name,phone\n"
           b"Old,One,+13125550001\n"          # updates the existing member: allowed
           b"New,Two,+13125550002\n"
           b"New,Three,+13125550003\n"
           b"New,Four,+13125550004\n"
           b"New,Five,+13125550005\n")
    form = aiohttp.FormData()
    form.add_field("file", csv, filename="m.csv", content_type="text/csv")
    resp = await client.post("/api/v1/members/import", data=form, headers=church.auth)
    report = await resp.json()
    assert resp.status == 200, report
    assert (report["created"], report["updated"], report["skipped"]) == (2, 1, 2)
    refused = [(e["line"], e["code"]) for e in report["errors"]]
    assert refused == [(5, "plan_limit_reached"), (6, "plan_limit_reached")]
    listing = await (await client.get("/api/v1/members", headers=church.auth)).json()
    assert len(listing["items"]) == 3


async def test_plan_route_shows_limits_usage_and_remaining(client: Client) -> None:
    church = await register(client)
    assert (await _member(church, 1)).status == 201
    resp = await client.get("/api/v1/billing/plan", headers=church.auth)
    plan = await resp.json()
    assert resp.status == 200, plan
    assert plan["plan"] == {"code": "starter", "name": "Starter", "monthly_cents": 4900,
                            "annual_cents": 47040}
    assert (plan["status"], plan["cycle"], plan["sending"]) == ("trialing", None, True)
    assert plan["limits"] == {"branches": 1, "members": 3, "messages_per_month": 1000,
                              "co_admins": 1}
    assert plan["usage"] == {"branches": 0, "members": 1, "messages_per_month": 0,
                             "co_admins": 0}
    assert plan["remaining"]["members"] == 2
    trial_end = datetime.fromisoformat(plan["trial_ends_at"])
    assert 13.9 < (trial_end - datetime.now(UTC)).total_seconds() / 86400 <= 14
    assert plan["cancel_at_period_end"] is False and plan["current_period_end"] is None


async def test_usage_by_local_day_with_a_checked_range(
        client: Client, pg_admin: Any, small_settings: Settings, registry_conn: Any) -> None:
    church = await register(client)     # America/Chicago (UTC-6 in January)
    async with church_db(pg_admin, small_settings, church.tenant_id) as db:
        for at, segments, state in (
                ("2026-01-10T05:30:00Z", 1, "delivered"),   # Jan 9, 23:30 local
                ("2026-01-10T07:00:00Z", 2, "sent"),        # Jan 10, 01:00 local
                ("2026-01-10T20:00:00Z", 3, "failed"),      # Jan 10
                ("2026-01-10T21:00:00Z", 1, "cancelled"),   # free
                ("2026-01-13T12:00:00Z", 1, "queued")):     # outside the range
            await db.execute(
                "INSERT INTO outbox (to_phone, body, segments, state, queued_at) "
                "VALUES ('+13125550100', 'x', $1, $2, $3::text::timestamptz)",
                segments, state, at)
    resp = await client.get("/api/v1/billing/usage?from=2026-01-09&to=2026-01-11",
                            headers=church.auth)
    doc = await resp.json()
    assert resp.status == 200, doc
    per = small_settings.cost_per_segment
    assert [(d["day"], d["messages"], d["segments"]) for d in doc["days"]] == [
        ("2026-01-09", 1, 1), ("2026-01-10", 2, 5), ("2026-01-11", 0, 0)]
    assert doc["days"][1]["cost"] == round(5 * per, 4)
    assert doc["totals"] == {"messages": 3, "segments": 6, "cost": round(6 * per, 4)}
    assert doc["time_zone"] == "America/Chicago"
    for query, code in (("from=2026-01-12&to=2026-01-11", "empty_range"),
                        ("from=2024-01-01&to=2026-01-11", "range_too_long"),
                        ("from=9999-12-31&to=9999-12-31", "out_of_range"),
                        ("from=yesterday", None), ("to=2026-02-30", None)):
        refused = await problem(await client.get(f"/api/v1/billing/usage?{query}",
                                                 headers=church.auth), 422, "validation_failed")
        if code is not None:
            assert [e["code"] for e in refused["errors"]] == [code]
    default = await (await client.get("/api/v1/billing/usage", headers=church.auth)).json()
    assert default["from"].endswith("-01") and default["to"] >= default["from"]


async def test_a_creation_at_the_limit_waits_for_the_one_in_flight(
        client: Client, small_settings: Settings, registry_conn: Any, pg_admin: Any) -> None:
    """The limit's lock, seen directly: while one transaction has reserved the last member
    and not committed, another's reserve waits; once the first commits, it is refused."""
    church = await register(client)
    for n in range(2):
        assert (await _member(church, n)).status == 201
    ent = await entitlement(registry_conn, small_settings, uuid.UUID(church.tenant_id),
                            datetime.now(UTC))
    async with church_db(pg_admin, small_settings, church.tenant_id) as first, \
            church_db(pg_admin, small_settings, church.tenant_id) as second:
        tx = first.transaction()
        await tx.start()
        await reserve(first, small_settings, ent, "members")         # the third: allowed
        await first.execute("INSERT INTO members (first_name, last_name, phone) "
                            "VALUES ('M', '2', '+13125550002')")

        async def other() -> None:
            async with second.transaction():
                await reserve(second, small_settings, ent, "members")

        waiting = asyncio.create_task(other())
        done, _ = await asyncio.wait({waiting}, timeout=0.5)
        assert not done                                   # held by the first transaction
        await tx.commit()
        with pytest.raises(PlanLimitReached):
            await asyncio.wait_for(waiting, 5)


async def test_billing_routes_are_the_owners(client: Client, outbox: Path) -> None:
    from tests.integration.test_auth_admins import _invite as invite_and_accept

    church = await register(client)
    helper = await invite_and_accept(client, church, outbox)
    auth = {"Authorization": f"Bearer {helper['access']}"}
    for path in ("/api/v1/billing/plan", "/api/v1/billing/usage", "/api/v1/billing/invoices"):
        await problem(await client.get(path, headers=auth), 403, "forbidden")
    for path, body in (("/api/v1/billing/checkout", {"plan": "growth", "cycle": "monthly"}),
                       ("/api/v1/billing/portal", {})):
        await problem(await client.post(path, headers=auth, json=body), 403, "forbidden")
