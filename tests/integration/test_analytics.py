"""Analytics over HTTP: outbox outcomes by church-local day, member growth, the summary, and
no figure of one church ever shown to another (the old system's cache keys leaked)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Church, Client, problem, register
from ywmessaging.config import Settings
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget
from ywmessaging.tenants.naming import tenant_db_name

TZ = "America/Chicago"
ZERO = {"sent": 0, "delivered": 0, "failed": 0, "unknown": 0, "pending": 0}


async def tenant_execute(pg_admin: PgTarget, settings: Settings, church: Church, sql: str,
                         *args: Any) -> None:
    """Write straight into the church's database (rows the messaging worker would make)."""
    name = tenant_db_name(settings, uuid.UUID(church.tenant_id))
    conn = await pg.connect(pg_admin.with_db(name))
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


def _local(days_ago: int, hour: int, minute: int = 0) -> dt.datetime:
    """An instant at a church-local wall-clock time `days_ago` local days before today."""
    today = dt.datetime.now(ZoneInfo(TZ)).date()
    day = today - dt.timedelta(days=days_ago)
    return dt.datetime.combine(day, dt.time(hour, minute), ZoneInfo(TZ))


OUTBOX = """
INSERT INTO outbox (to_phone, body, state, queued_at, sent_at, segments)
SELECT '+12025550100', 'hi', s, q, CASE WHEN s IN ('sent', 'delivered', 'failed') THEN q END, 2
FROM unnest($1::text[], $2::timestamptz[]) AS t(s, q)
"""


async def test_messages_by_local_day_and_isolation(api_client: Client, pg_admin: PgTarget,
                                                   settings: Settings) -> None:
    a, b = await register(api_client), await register(api_client)
    states = ["delivered", "delivered", "failed", "sent", "queued", "delivered", "unknown"]
    times = [_local(0, 0, 30), _local(0, 0, 45), _local(0, 1), _local(0, 2), _local(0, 3),
             _local(1, 23, 30),  # yesterday 23:30 local: already "today" in UTC
             _local(40, 12)]      # outside a 30-day window
    await tenant_execute(pg_admin, settings, a, OUTBOX, states, times)
    resp = await api_client.get("/api/v1/analytics/messages?days=30", headers=a.auth)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["time_zone"] == TZ and body["days"] == 30 and len(body["by_day"]) == 30
    today, yesterday = body["by_day"][-1], body["by_day"][-2]
    assert today["date"] == _local(0, 12).date().isoformat()
    assert {k: today[k] for k in ZERO} == {"sent": 4, "delivered": 2, "failed": 1,
                                           "unknown": 0, "pending": 1}
    assert today["delivery_rate"] == 0.5
    assert {k: yesterday[k] for k in ("sent", "delivered")} == {"sent": 1, "delivered": 1}
    assert (body["sent"], body["delivered"], body["delivery_rate"]) == (5, 3, 0.6)
    assert all({k: d[k] for k in ZERO} == ZERO for d in body["by_day"][:-2])
    theirs = await (await api_client.get("/api/v1/analytics/messages?days=30",
                                         headers=b.auth)).json()
    assert theirs["sent"] == 0 and theirs["delivery_rate"] is None
    week = await (await api_client.get("/api/v1/analytics/messages?days=1",
                                       headers=a.auth)).json()
    assert len(week["by_day"]) == 1 and week["sent"] == 4


async def test_summary_and_member_growth_are_per_church(api_client: Client, pg_admin: PgTarget,
                                                        settings: Settings) -> None:
    a, b = await register(api_client), await register(api_client)
    for phone in ("+12025550111", "+12025550112", "+12025550113"):
        resp = await api_client.post("/api/v1/members", headers=a.auth,
                                     json={"first_name": "M", "last_name": "X", "phone": phone})
        assert resp.status == 201, await resp.text()
    await tenant_execute(pg_admin, settings, a,
                         "UPDATE members SET created_at = now() - interval '10 days' "
                         "WHERE phone = '+12025550111'")
    members = (await (await api_client.get("/api/v1/members", headers=a.auth)).json())["items"]
    target = next(m for m in members if m["phone"] == "+12025550112")
    resp = await api_client.post(f"/api/v1/members/{target['id']}/opt-out", headers=a.auth,
                                 json={})
    assert resp.status in (200, 204), await resp.text()
    await tenant_execute(pg_admin, settings, a, OUTBOX, ["delivered", "failed"],
                         [_local(0, 0, 1), _local(0, 0, 2)])
    summary = await (await api_client.get("/api/v1/analytics/summary", headers=a.auth)).json()
    assert (summary["members_total"], summary["members_opted_out"],
            summary["members_opted_in"]) == (3, 1, 2)
    assert summary["sent_30d"] == 2 and summary["delivery_rate_30d"] == 0.5
    assert summary["templates_total"] >= 7 and summary["time_zone"] == TZ
    growth = await (await api_client.get("/api/v1/analytics/members?days=7",
                                         headers=a.auth)).json()
    assert growth["total_members"] == 3 and growth["new_members"] == 2
    assert growth["growth"] == 2 and growth["growth_rate"] == 2.0
    assert growth["opt_outs"] == 1 and growth["by_day"][-1]["opt_outs"] == 1
    assert growth["by_day"][0]["total_members"] == 1
    theirs = await (await api_client.get("/api/v1/analytics/summary", headers=b.auth)).json()
    assert theirs["members_total"] == 0 and theirs["sent_30d"] == 0
    b_growth = await (await api_client.get("/api/v1/analytics/members?days=7",
                                           headers=b.auth)).json()
    assert b_growth["total_members"] == 0 and b_growth["growth_rate"] is None


async def test_branch_figures_count_each_branchs_own_members(
    api_client: Client, pg_admin: PgTarget, settings: Settings,
) -> None:
    church, other = await register(api_client), await register(api_client)
    ids = {}
    for name in ("North", "South"):
        resp = await api_client.post("/api/v1/branches", headers=church.auth, json={"name": name})
        assert resp.status == 201, await resp.text()
        ids[name] = (await resp.json())["id"]
    for phone, branch in (("+12025550121", "North"), ("+12025550122", "North"),
                          ("+12025550123", "South")):
        resp = await api_client.post("/api/v1/members", headers=church.auth, json={
            "first_name": "M", "last_name": "X", "phone": phone, "branch_id": ids[branch]})
        assert resp.status == 201, await resp.text()
    await tenant_execute(
        pg_admin, settings, church,
        "INSERT INTO outbox (member_id, to_phone, body, state, queued_at, sent_at) "
        "SELECT id, phone, 'hi', s, now(), now() FROM members, unnest($1::text[]) AS s "
        "WHERE phone = '+12025550121'", ["delivered", "failed"])
    body = await (await api_client.get("/api/v1/analytics/branches?days=7",
                                       headers=church.auth)).json()
    got = {b["name"]: (b["members"], b["sent"], b["delivered"], b["delivery_rate"])
           for b in body["items"]}
    assert got["North"] == (2, 2, 1, 0.5) and got["South"] == (1, 0, 0, None)
    theirs = await (await api_client.get("/api/v1/analytics/branches", headers=other.auth)).json()
    assert not {b["id"] for b in theirs["items"]} & set(ids.values())


async def test_analytics_refuses_bad_windows(api_client: Client) -> None:
    church = await register(api_client)
    for path in ("messages", "members", "branches"):
        for query in ("days=0", "days=366", "days=-1", "days=7d", "days=٣", "span=3"):
            await problem(await api_client.get(f"/api/v1/analytics/{path}?{query}",
                                               headers=church.auth), 422, "validation_failed")
    await problem(await api_client.get("/api/v1/analytics/summary?x=1", headers=church.auth),
                  422, "validation_failed")
    await problem(await api_client.get("/api/v1/analytics/summary"), 401, "unauthorized")
