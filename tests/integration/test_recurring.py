"""Recurring messages: the API, and each occurrence sent exactly once across two workers, a
restart and a DST change (time driven by an injectable clock, never by sleeping)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.integration.sending_fixtures import *  # noqa: F403
from tests.integration.sending_fixtures import (
    Sending,
    problem,
    running_worker,
    sim_numbers,
)
from ywmessaging.billing.state import entitlement
from ywmessaging.config import Settings
from ywmessaging.messaging import recurring

NY = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def _create(sending: Sending, church: Any, **fields: Any) -> dict[str, Any]:
    body = {"name": "Sunday reminder", "body": "Service at 9", "target": {"all": True},
            "frequency": "daily", "local_time": "09:00", **fields}
    resp = await sending.client.post("/api/v1/recurring", json=body, headers=church.auth)
    doc: dict[str, Any] = await resp.json()
    assert resp.status == 201, doc
    return doc


async def test_recurring_api(sending: Sending) -> None:
    church, _, _ = await sending.church(members=1)
    # weekdays by name, one unambiguous form (is 0 Sunday or Monday? neither is accepted)
    weekly = await _create(sending, church, frequency="weekly",
                           days_of_week=["sunday", "wednesday", "sunday"],
                           local_time="18:30", time_zone="Europe/London")
    assert weekly["days_of_week"] == ["wednesday", "sunday"]   # Monday first, no repeats
    assert weekly["local_time"] == "18:30"
    nxt = datetime.fromisoformat(weekly["next_run_at"]).astimezone(ZoneInfo("Europe/London"))
    assert (nxt.weekday() in (2, 6), nxt.hour, nxt.minute) == (True, 18, 30)
    sundays = await _create(sending, church, frequency="weekly", days_of_week=["sunday"])
    when = datetime.fromisoformat(sundays["next_run_at"]).astimezone(ZoneInfo("America/Chicago"))
    assert when.strftime("%A") == "Sunday"
    monthly = await _create(sending, church, frequency="monthly", day_of_month=31)
    assert monthly["time_zone"] == "America/Chicago"      # the church's (set at sign-up)
    assert monthly["status"] == "active" and monthly["missed_policy"] == "send_late"
    bad: list[dict[str, Any]] = [
        {"frequency": "weekly"}, {"frequency": "monthly"}, {"frequency": "hourly"},
        {"frequency": "monthly", "day_of_month": 32}, {"local_time": "25:00"},
        {"local_time": "9am"}, {"time_zone": "Mars/Olympus"}, {"days_of_week": [7]},
        {"days_of_week": [0]}, {"days_of_week": ["Sunday"]}, {"days_of_week": ["sun"]},
        {"days_of_week": []},
        {"target": {"member_ids": [str(uuid.uuid4())]}}, {"missed_policy": "never"},
        {"name": ""}, {"unknown": 1},
    ]
    base = {"name": "n", "body": "b", "target": {"all": True}, "frequency": "daily",
            "local_time": "09:00"}
    for change in bad:
        resp = await sending.client.post("/api/v1/recurring", json={**base, **change},
                                         headers=church.auth)
        await problem(resp, 422, "validation_failed")
    listed = await (await sending.client.get("/api/v1/recurring", headers=church.auth)).json()
    assert {r["id"] for r in listed["items"]} == {weekly["id"], sundays["id"], monthly["id"]}
    url = f"/api/v1/recurring/{weekly['id']}"
    renamed = await (await sending.client.patch(url, json={"name": "Evensong"},
                                                headers=church.auth)).json()
    assert renamed["name"] == "Evensong" and renamed["next_run_at"] == weekly["next_run_at"]
    moved = await (await sending.client.patch(url, json={"local_time": "07:15"},
                                              headers=church.auth)).json()
    assert moved["next_run_at"] != weekly["next_run_at"] and moved["local_time"] == "07:15"
    await problem(await sending.client.patch(url, json={}, headers=church.auth),
                  422, "validation_failed")
    paused = await (await sending.client.post(f"{url}/pause", headers=church.auth)).json()
    assert paused["status"] == "paused"
    resumed = await (await sending.client.post(f"{url}/resume", headers=church.auth)).json()
    assert resumed["status"] == "active"
    other, _, _ = await sending.church()
    await problem(await sending.client.get(url, headers=other.auth), 404, "not_found")
    await problem(await sending.client.delete(url, headers=other.auth), 404, "not_found")
    assert (await sending.client.delete(url, headers=church.auth)).status == 204
    await problem(await sending.client.get(url, headers=church.auth), 404, "not_found")


async def test_each_occurrence_fires_once_across_two_workers_restart_and_dst(
        sending: Sending, send_settings: Settings) -> None:
    church, _, phones = await sending.church(members=2)
    rule = await _create(sending, church, time_zone="America/New_York")
    clock = {"now": utc(2027, 3, 12, 13)}   # 08:00 EST, months after the first occurrence
    settings = send_settings.with_(worker_claim_ttl=30.0)

    def now() -> datetime:
        return clock["now"]

    async with running_worker(sending.client, settings, clock=now, run=False) as one, \
            running_worker(sending.client, settings, clock=now, run=False) as two:
        while clock["now"] <= utc(2027, 3, 16, 15):
            await asyncio.gather(one.drain_all(), two.drain_all())
            clock["now"] += timedelta(minutes=30)
    async with running_worker(sending.client, settings, clock=now, run=False) as restarted:
        await restarted.drain_all()                      # a restart changes nothing
    async with sending.db(church) as db:
        rows = await db.fetch("SELECT occurrence_at, recipient_count FROM broadcasts "
                              "WHERE recurring_id = $1 ORDER BY occurrence_at",
                              uuid.UUID(rule["id"]))
    occurrences = [r["occurrence_at"] for r in rows]
    assert occurrences == [
        utc(2027, 3, 11, 14),   # missed while "down": sent late, once (older ones skipped)
        utc(2027, 3, 12, 14),   # 09:00 EST
        utc(2027, 3, 13, 14),   # 09:00 EST
        utc(2027, 3, 14, 13),   # 09:00 EDT: the day clocks spring forward
        utc(2027, 3, 15, 13),
        utc(2027, 3, 16, 13),
    ]
    assert all(o.astimezone(NY).hour == 9 for o in occurrences[1:])
    assert {r["recipient_count"] for r in rows} == {2}
    sent = sim_numbers(sending.sim)
    assert sorted(sent) == sorted(phones * 6)           # one message per member per occurrence


async def test_concurrent_schedulers_materialize_one_broadcast(
        sending: Sending, send_settings: Settings) -> None:
    church, _, _ = await sending.church(members=1)
    rule = await _create(sending, church, time_zone="America/New_York")
    due = datetime.fromisoformat(rule["next_run_at"])
    at = due + timedelta(seconds=5)
    ent = await entitlement(sending.registry_conn, send_settings,
                            uuid.UUID(church.tenant_id), at)
    async with sending.db(church) as a, sending.db(church) as b:
        results = await asyncio.gather(recurring.run_due(a, send_settings, ent, at),
                                       recurring.run_due(b, send_settings, ent, at))
        assert sorted(len(r) for r in results) == [0, 1]
        assert await recurring.run_due(a, send_settings, ent, at) == []
        # Even if the rule were rewound (a restored backup), the occurrence is not repeated.
        await a.execute("UPDATE recurring_messages SET next_run_at = $1", due)
        assert await recurring.run_due(b, send_settings, ent, at) == [
            (uuid.UUID(rule["id"]), due)]
        count = await a.fetchval("SELECT count(*) FROM broadcasts")
        outbox = await a.fetchval("SELECT count(*) FROM outbox")
    assert (count, outbox) == (1, 1)


async def test_missed_occurrences_skipped_by_policy_and_while_paused(
        sending: Sending, send_settings: Settings) -> None:
    church, _, _ = await sending.church(members=1)
    skip = await _create(sending, church, missed_policy="skip")
    paused = await _create(sending, church, name="Paused")
    resp = await sending.client.post(f"/api/v1/recurring/{paused['id']}/pause",
                                     headers=church.auth)
    assert resp.status == 200
    late = datetime.fromisoformat(skip["next_run_at"]) + timedelta(days=2, hours=1)
    ent = await entitlement(sending.registry_conn, send_settings,
                            uuid.UUID(church.tenant_id), late)
    async with sending.db(church) as db:
        handled = await recurring.run_due(db, send_settings, ent, late)
        assert handled == [(uuid.UUID(skip["id"]), None)]          # skipped, not sent
        assert await db.fetchval("SELECT count(*) FROM broadcasts") == 0
        nxt = await db.fetchval("SELECT next_run_at FROM recurring_messages WHERE id = $1",
                                uuid.UUID(skip["id"]))
        assert nxt > late
        on_time = await recurring.run_due(db, send_settings, ent, nxt + timedelta(seconds=1))
        assert on_time == [(uuid.UUID(skip["id"]), nxt)]
        assert await db.fetchval("SELECT count(*) FROM broadcasts") == 1
