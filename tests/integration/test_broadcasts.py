"""Broadcasts over HTTP: recipients resolved once into outbox rows, targets, validation, quota,
scheduling and cancel, preview, history and recipients pages, retry-failed, isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.sending_fixtures import *  # noqa: F403
from tests.integration.sending_fixtures import (
    Sending,
    outbox_states,
    problem,
)


async def test_broadcast_to_all_writes_one_row_per_opted_in_member(sending: Sending) -> None:
    church, _, phones = await sending.church(members=12, opted_out=3)
    doc = await sending.broadcast(church, {"body": "Service at 10", "target": {"all": True}})
    assert doc["status"] == "queued" and doc["recipient_count"] == 9
    assert doc["counts"]["queued"] == 9 and doc["segments"] == 1 and doc["encoding"] == "gsm7"
    async with sending.db(church) as db:
        rows = await db.fetch("SELECT to_phone, body FROM outbox WHERE broadcast_id = $1",
                              uuid.UUID(doc["id"]))
        queued = await sending.registry_conn.fetchval(
            "SELECT due_at IS NOT NULL FROM tenant_work WHERE tenant_id = $1",
            uuid.UUID(church.tenant_id))
    assert sorted(r["to_phone"] for r in rows) == sorted(phones[3:])  # opted-out skipped
    assert {r["body"] for r in rows} == {"Service at 10"}
    assert queued  # the workers were told


async def test_targets_branches_groups_members(sending: Sending) -> None:
    church, _, _ = await sending.church(members=6)
    async with sending.db(church) as db:
        ids = [r["id"] for r in await db.fetch("SELECT id FROM members ORDER BY phone")]
        branch = await db.fetchval("INSERT INTO branches (name) VALUES ('North') RETURNING id")
        group = await db.fetchval("INSERT INTO groups (name) VALUES ('Choir') RETURNING id")
        await db.execute("UPDATE members SET branch_id = $1 WHERE id = ANY($2::uuid[])",
                         branch, ids[:2])
        await db.execute("INSERT INTO group_members (group_id, member_id) "
                         "SELECT $1, unnest($2::uuid[])", group, ids[1:4])
    cases = [({"branch_ids": [str(branch)]}, 2), ({"group_ids": [str(group)]}, 3),
             ({"member_ids": [str(ids[5]), str(ids[5])]}, 1)]
    for target, expected in cases:
        doc = await sending.broadcast(church, {"body": "Hi", "target": target})
        assert doc["recipient_count"] == expected, target
        assert doc["target"] == {next(iter(target)): sorted(set(next(iter(target.values()))))}
    resp = await sending.client.post("/api/v1/broadcasts", headers=church.auth, json={
        "body": "Hi", "target": {"group_ids": [str(uuid.uuid4())]}})
    assert (await problem(resp, 422, "validation_failed"))["field"] == "target"


async def test_invalid_requests_are_refused(sending: Sending) -> None:
    church, _, _ = await sending.church(members=1)
    bad: list[dict[str, Any]] = [
        {"body": "x"},                                            # no target
        {"body": "x", "target": {}},
        {"body": "x", "target": {"all": True, "group_ids": []}},
        {"body": "x", "target": {"all": False}},
        {"body": "x", "target": {"member_ids": ["nope"]}},
        {"body": "x", "target": {"member_ids": []}},
        {"body": "", "target": {"all": True}},
        {"body": "a" * 1601, "target": {"all": True}},
        {"body": "bell\x07", "target": {"all": True}},
        {"target": {"all": True}},                                # neither body nor template
        {"body": "x", "target": {"all": True}, "send_at": "tomorrow"},
        {"body": "x", "target": {"all": True}, "send_at": "2030-01-01T10:00:00"},  # no offset
        {"body": "x", "target": {"all": True}, "send_at": "2001-01-01T10:00:00Z"},  # past
        {"body": "x", "target": {"all": True}, "extra": 1},
        {"body": "x", "target": {"all": True}, "template_id": str(uuid.uuid4())},
    ]
    for body in bad:
        resp = await sending.client.post("/api/v1/broadcasts", json=body, headers=church.auth)
        await problem(resp, 422, "validation_failed")
    resp = await sending.client.post("/api/v1/broadcasts", data=b"{", headers={
        **church.auth, "Content-Type": "application/json"})
    await problem(resp, 400, "invalid_json")
    async with sending.db(church) as db:
        assert await db.fetchval("SELECT count(*) FROM broadcasts") == 0


async def test_no_sender_number_refuses(sending: Sending) -> None:
    church, _, _ = await sending.church(members=5)
    async with sending.db(church) as db:
        await db.execute("UPDATE settings SET sender_number = NULL")
    resp = await sending.client.post("/api/v1/broadcasts", headers=church.auth,
                                     json={"body": "x", "target": {"all": True}})
    await problem(resp, 409, "no_sender_number")
    async with sending.db(church) as db:
        assert await db.fetchval("SELECT count(*) FROM broadcasts") == 0


async def test_quota_refuses_before_anything_is_queued(
        make_api_client: Any, send_settings: Any, sim: Any, registry_conn: Any,
        pg_admin: Any, tmp_path: Any) -> None:
    plans = tmp_path / "plans.json"   # a trial gets the starter plan's 7 messages a month
    plans.write_text('{"plans": [{"code": "starter", "monthly_cents": 1, "annual_cents": 1, '
                     '"limits": {"messages_per_month": 7}}]}')
    small_settings = send_settings.with_(billing_catalogue=plans)
    small = await make_api_client(small_settings)
    sending = Sending(small, registry_conn, pg_admin, small_settings, sim)
    church, _, _ = await sending.church(members=5)
    await sending.broadcast(church, {"body": "one", "target": {"all": True}})
    over = await small.post("/api/v1/broadcasts", headers=church.auth,
                            json={"body": "two", "target": {"all": True}})
    body = await problem(over, 402, "plan_limit_reached")
    assert (body["used"], body["limit"], body["requested"]) == (5, 7, 5)
    assert (body["plan"], body["resource"]) == ("starter", "messages_per_month")
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    sched = await small.post("/api/v1/broadcasts", headers=church.auth,
                             json={"body": "t", "target": {"all": True}, "send_at": later})
    await problem(sched, 402, "plan_limit_reached")
    preview = await (await small.post("/api/v1/broadcasts/preview", headers=church.auth,
                                      json={"body": "t", "target": {"all": True}})).json()
    assert preview["within_quota"] is False and preview["quota"]["remaining"] == 2
    async with sending.db(church) as db:
        assert await db.fetchval("SELECT count(*) FROM broadcasts") == 1
        assert await db.fetchval("SELECT count(*) FROM outbox") == 5


async def test_scheduled_broadcast_is_cancellable_until_queued(sending: Sending) -> None:
    church, _, _ = await sending.church(members=3)
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    doc = await sending.broadcast(church, {"body": "Later", "target": {"all": True},
                                           "send_at": later})
    assert doc["status"] == "scheduled" and doc["recipient_count"] == 0
    async with sending.db(church) as db:
        assert await db.fetchval("SELECT count(*) FROM outbox") == 0  # resolved when due
    resp = await sending.client.post(f"/api/v1/broadcasts/{doc['id']}/cancel",
                                     headers=church.auth)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    again = await sending.client.post(f"/api/v1/broadcasts/{doc['id']}/cancel",
                                      headers=church.auth)
    await problem(again, 409, "broadcast_not_cancellable")
    now = await sending.broadcast(church, {"body": "Now", "target": {"all": True}})
    resp = await sending.client.post(f"/api/v1/broadcasts/{now['id']}/cancel",
                                     headers=church.auth)
    await problem(resp, 409, "broadcast_not_cancellable")
    resp = await sending.client.post(f"/api/v1/broadcasts/{uuid.uuid4()}/cancel",
                                     headers=church.auth)
    await problem(resp, 404, "not_found")


async def test_preview_counts_segments_cost_and_quiet_hours(sending: Sending) -> None:
    church, _, _ = await sending.church(members=4, opted_out=1)
    async with sending.db(church) as db:
        await db.execute("UPDATE settings SET time_zone = 'UTC', quiet_hours_start = $1, "
                         "quiet_hours_end = $2", (datetime.now(UTC) - timedelta(hours=1)).time(),
                         (datetime.now(UTC) + timedelta(hours=1)).time())
        template = await db.fetchval(
            "INSERT INTO templates (name, body) VALUES ('t', 'Praise 🙌 together') RETURNING id")
    resp = await sending.client.post("/api/v1/broadcasts/preview", headers=church.auth, json={
        "template_id": str(template), "target": {"all": True}})
    doc = await resp.json()
    assert resp.status == 200, doc
    assert (doc["recipient_count"], doc["segments"], doc["encoding"]) == (3, 1, "UCS-2")
    assert doc["estimated_cost"] == round(3 * 1 * sending.settings.cost_per_segment, 4)
    assert doc["quiet_hours"]["in_quiet_hours"] is True and doc["quiet_hours"]["sends_at"]
    assert doc["quota"]["used"] == 0 and doc["within_quota"] is True
    long = await sending.client.post("/api/v1/broadcasts/preview", headers=church.auth, json={
        "body": "x" * 161, "target": {"all": True}})
    assert (await long.json())["segments"] == 2
    async with sending.db(church) as db:  # nothing written, template use not counted
        assert await db.fetchval("SELECT count(*) FROM broadcasts") == 0
        assert await db.fetchval("SELECT usage_count FROM templates") == 0


async def test_history_and_recipients_pages(sending: Sending) -> None:
    church, _, _ = await sending.church(members=5)
    made = [await sending.broadcast(church, {"body": f"b{i}", "target": {"all": True}})
            for i in range(3)]
    url, seen, cursor = "/api/v1/broadcasts?limit=2", [], None
    while True:
        resp = await sending.client.get(url + (f"&cursor={cursor}" if cursor else ""),
                                        headers=church.auth)
        page = await resp.json()
        assert resp.status == 200, page
        seen += [b["id"] for b in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [b["id"] for b in reversed(made)]  # newest first, each once
    bad = await sending.client.get("/api/v1/broadcasts?cursor=garbage", headers=church.auth)
    await problem(bad, 400, "invalid_cursor")
    bad = await sending.client.get("/api/v1/broadcasts?status=lost", headers=church.auth)
    await problem(bad, 422, "validation_failed")
    rid = made[0]["id"]
    first = await (await sending.client.get(f"/api/v1/broadcasts/{rid}/recipients?limit=3",
                                            headers=church.auth)).json()
    second = await (await sending.client.get(
        f"/api/v1/broadcasts/{rid}/recipients?limit=3&cursor={first['next_cursor']}",
        headers=church.auth)).json()
    phones = [r["to_phone"] for r in first["items"] + second["items"]]
    assert len(phones) == len(set(phones)) == 5 and second["next_cursor"] is None
    assert {r["state"] for r in first["items"]} == {"queued"}
    only = await (await sending.client.get(f"/api/v1/broadcasts/{rid}/recipients?state=failed",
                                           headers=church.auth)).json()
    assert only["items"] == []
    detail = await (await sending.client.get(f"/api/v1/broadcasts/{rid}",
                                             headers=church.auth)).json()
    assert detail["counts"]["queued"] == 5 and detail["body"] == "b0"


async def test_retry_failed_requeues_failed_rows(sending: Sending) -> None:
    church, _, _ = await sending.church(members=4)
    doc = await sending.broadcast(church, {"body": "x", "target": {"all": True}})
    async with sending.db(church) as db:
        await db.execute("UPDATE outbox SET state = 'failed', error_code = '40008', "
                         "attempts = 5 WHERE id IN (SELECT id FROM outbox LIMIT 2)")
        await db.execute("UPDATE outbox SET state = 'unknown' WHERE state = 'queued' "
                         "AND id IN (SELECT id FROM outbox WHERE state = 'queued' LIMIT 1)")
    resp = await sending.client.post(f"/api/v1/broadcasts/{doc['id']}/retry-failed",
                                     headers=church.auth)
    body = await resp.json()
    assert resp.status == 200 and body["requeued"] == 2, body
    assert body["broadcast"]["counts"]["queued"] == 3
    assert body["broadcast"]["counts"]["unknown"] == 1
    resp = await sending.client.post(f"/api/v1/broadcasts/{doc['id']}/retry-failed",
                                     headers=church.auth, json={"include_unknown": True})
    assert (await resp.json())["requeued"] == 1
    async with sending.db(church) as db:
        assert await outbox_states(db, doc["id"]) == {"queued": 4}
        assert await db.fetchval("SELECT max(attempts) FROM outbox") == 0
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    sched = await sending.broadcast(church, {"body": "s", "target": {"all": True},
                                             "send_at": later})
    resp = await sending.client.post(f"/api/v1/broadcasts/{sched['id']}/retry-failed",
                                     headers=church.auth)
    await problem(resp, 409, "broadcast_not_retryable")


async def test_another_church_sees_nothing(sending: Sending) -> None:
    church, _, _ = await sending.church(members=2)
    other, _, _ = await sending.church(members=2)
    doc = await sending.broadcast(church, {"body": "mine", "target": {"all": True}})
    for path in (f"/api/v1/broadcasts/{doc['id']}", f"/api/v1/broadcasts/{doc['id']}/recipients"):
        await problem(await sending.client.get(path, headers=other.auth), 404, "not_found")
    resp = await sending.client.post(f"/api/v1/broadcasts/{doc['id']}/retry-failed",
                                     headers=other.auth)
    await problem(resp, 404, "not_found")
    listing = await (await sending.client.get("/api/v1/broadcasts", headers=other.auth)).json()
    assert listing["items"] == []
    members = (await (await sending.client.get("/api/v1/broadcasts", headers=church.auth))
               .json())["items"]
    assert [b["id"] for b in members] == [doc["id"]]
    resp = await sending.client.post("/api/v1/broadcasts", headers=other.auth, json={
        "body": "x", "target": {"member_ids": [str(uuid.uuid4())]}})
    await problem(resp, 422, "validation_failed")
    resp = await sending.client.get("/api/v1/broadcasts")
    await problem(resp, 401, "unauthorized")
