"""Inbound SMS through the simulator and the signed webhook: keywords, conversations, unknown
senders, ordering by occurred_at, and a church database that is down for a while."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.carrier_sim_fixtures import *  # noqa: F403
from tests.integration.carrier_sim_fixtures import (
    church_with_number,
    inbox_row,
    random_number,
    sim_inbound,
    tenant_db,
    wait_until,
)
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget


async def _done(registry_conn: Any, event_id: str) -> Any:
    row = await inbox_row(registry_conn, event_id)
    return row if row is not None and row["state"] in ("done", "ignored") else None


async def _add_member(db: Any, phone: str, changed_at: str = "2024-01-01T00:00:00Z") -> Any:
    return await db.fetchval(
        "INSERT INTO members (first_name, last_name, phone, opt_in_changed_at)"
        " VALUES ('Mary', 'Member', $1, $2::text::timestamptz) RETURNING id", phone, changed_at)


async def test_stop_opts_out_and_queues_one_confirmation(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget) -> None:
    church, number = await church_with_number(msg_client, registry_conn, sim)
    phone = random_number()
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        member_id = await _add_member(db, phone)
        sent = await sim_inbound(msg_client, sim, phone, number, "  Stop! ")
        row = await wait_until(lambda: _done(registry_conn, sent["event_id"]))
        assert (row["state"], row["last_error"]) == ("done", "opted_out")
        assert row["tenant_id"] == uuid.UUID(church.tenant_id)
        member = await db.fetchrow("SELECT opt_in FROM members WHERE id = $1", member_id)
        assert member["opt_in"] == "opted_out"
        replies = await db.fetch("SELECT * FROM outbox")
        stop_reply = await db.fetchval("SELECT stop_reply FROM settings")
        assert len(replies) == 1
        reply = replies[0]
        assert (reply["to_phone"], reply["from_phone"], reply["body"], reply["state"]) == (
            phone, number, stop_reply, "queued")
        assert reply["broadcast_id"] is None and reply["conversation_message_id"] is None
        # the workers are told at once (not at the next reconciliation sweep)
        assert await registry_conn.fetchval(
            "SELECT due_at <= now() FROM tenant_work WHERE tenant_id = $1::uuid",
            church.tenant_id) is True
        # a second STOP (a new message) changes nothing and sends no second confirmation
        again = await sim_inbound(msg_client, sim, phone, number, "STOP")
        row = await wait_until(lambda: _done(registry_conn, again["event_id"]))
        assert row["last_error"] == "unchanged_keyword"
        assert await db.fetchval("SELECT count(*) FROM outbox") == 1
        kinds = await db.fetch("SELECT kind, keyword FROM consent_events ORDER BY recorded_at")
        assert [(k["kind"], k["keyword"]) for k in kinds] == [("opt_out", "STOP")] * 2
        # keywords are not conversation messages
        assert await db.fetchval("SELECT count(*) FROM conversation_messages") == 0


async def test_late_old_stop_does_not_undo_newer_start(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget) -> None:
    church, number = await church_with_number(msg_client, registry_conn, sim)
    phone = random_number()
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        member_id = await _add_member(db, phone)
        for text, at in (("STOP", "2024-05-01T10:00:00+00:00"),
                         ("start", "2024-05-01T12:00:00+00:00"),
                         ("STOP", "2024-05-01T11:00:00+00:00")):   # delivered late
            sent = await sim_inbound(msg_client, sim, phone, number, text, occurred_at=at)
            await wait_until(lambda sent=sent: _done(registry_conn, sent["event_id"]))
        member = await db.fetchrow("SELECT opt_in, opt_in_changed_at FROM members WHERE id = $1",
                                   member_id)
        assert member["opt_in"] == "opted_in"
        assert member["opt_in_changed_at"].isoformat() == "2024-05-01T12:00:00+00:00"
        bodies = [r["body"] for r in await db.fetch("SELECT body FROM outbox ORDER BY queued_at")]
        texts = await db.fetchrow("SELECT stop_reply, start_reply FROM settings")
        assert bodies == [texts["stop_reply"], texts["start_reply"]]
        trail = await db.fetch("SELECT kind, detail FROM consent_events ORDER BY recorded_at")
        assert [(t["kind"], '"applied": false' in t["detail"]) for t in trail] == [
            ("opt_out", False), ("opt_in", False), ("opt_out", True)]


async def test_help_replies_with_the_church_text(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget) -> None:
    church, number = await church_with_number(msg_client, registry_conn, sim)
    phone = random_number()
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        await db.execute("UPDATE settings SET help_reply = 'Grace Church: call 555-0100.'")
        await _add_member(db, phone)
        sent = await sim_inbound(msg_client, sim, phone, number, "help")
        row = await wait_until(lambda: _done(registry_conn, sent["event_id"]))
        assert row["last_error"] == "help"
        replies = await db.fetch("SELECT to_phone, body FROM outbox")
        assert [(r["to_phone"], r["body"]) for r in replies] == [
            (phone, "Grace Church: call 555-0100.")]
        assert await db.fetchval("SELECT opt_in FROM members WHERE phone = $1", phone) == \
            "opted_in"


async def test_messages_append_to_the_conversation_with_unread_count(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget) -> None:
    church, number = await church_with_number(msg_client, registry_conn, sim)
    phone = random_number()
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        member_id = await _add_member(db, phone)
        for text in ("Can I bring a friend on Sunday?", "Yes 🙂 see you"):
            sent = await sim_inbound(msg_client, sim, phone, number, text)
            row = await wait_until(lambda sent=sent: _done(registry_conn, sent["event_id"]))
            assert row["last_error"] == "appended"
        conv = await db.fetchrow("SELECT * FROM conversations WHERE member_id = $1", member_id)
        assert (conv["unread_count"], conv["status"], conv["last_message_preview"]) == (
            2, "open", "Yes 🙂 see you")
        msgs = await db.fetch("SELECT direction, body, delivery_status, carrier_message_id"
                              " FROM conversation_messages WHERE conversation_id = $1"
                              " ORDER BY created_at", conv["id"])
        assert [(m["direction"], m["body"], m["delivery_status"]) for m in msgs] == [
            ("inbound", "Can I bring a friend on Sunday?", "received"),
            ("inbound", "Yes 🙂 see you", "received")]
        assert all(m["carrier_message_id"] for m in msgs)
        assert await db.fetchval("SELECT count(*) FROM outbox") == 0


async def test_unknown_sender_is_recorded_as_a_member_with_only_a_phone(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget) -> None:
    church, number = await church_with_number(msg_client, registry_conn, sim)
    stranger = random_number()
    sent = await sim_inbound(msg_client, sim, stranger, number, "Hi, what time is service?")
    row = await wait_until(lambda: _done(registry_conn, sent["event_id"]))
    assert row["state"] == "done"
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        member = await db.fetchrow("SELECT * FROM members WHERE phone = $1", stranger)
        assert (member["first_name"], member["last_name"], member["opt_in"]) == (
            "", "", "opted_in")
        assert member["notes"]
        conv = await db.fetchrow("SELECT unread_count FROM conversations WHERE member_id = $1",
                                 member["id"])
        assert conv["unread_count"] == 1
    # the member appears through the API like any other (staff can name them)
    resp = await msg_client.get(f"/api/v1/members/{member['id']}", headers=church.auth)
    assert resp.status == 200


async def test_tenant_database_down_then_back(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget) -> None:
    church, number = await church_with_number(msg_client, registry_conn, sim)
    phone = random_number()
    db_name = await registry_conn.fetchval("SELECT db_name FROM tenants WHERE id = $1",
                                           uuid.UUID(church.tenant_id))
    admin = await pg.connect(pg_admin)
    try:
        await admin.execute(f'ALTER DATABASE "{db_name}" WITH ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = $1", db_name)
        sent = await sim_inbound(msg_client, sim, phone, number, "STOP")
        waiting = await wait_until(lambda: _failed(registry_conn, sent["event_id"]))
        assert waiting["tenant_id"] == uuid.UUID(church.tenant_id)
        assert waiting["last_error"] == "tenant_unavailable"
    finally:
        await admin.execute(f'ALTER DATABASE "{db_name}" WITH ALLOW_CONNECTIONS true')
        await admin.close()
    row = await wait_until(lambda: _done(registry_conn, sent["event_id"]), timeout=20.0)
    assert (row["state"], row["last_error"]) == ("done", "opted_out")
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        assert await db.fetchval("SELECT opt_in FROM members WHERE phone = $1", phone) == \
            "opted_out"
        assert await db.fetchval("SELECT count(*) FROM outbox") == 1


async def _failed(registry_conn: Any, event_id: str) -> Any:
    row = await inbox_row(registry_conn, event_id)
    return row if row is not None and row["state"] == "failed" else None


async def test_an_app_side_change_never_makes_a_stop_look_stale(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget) -> None:
    """Clocks differ: an admin's opt-in stamped (by our clock) after the member's STOP (by the
    carrier's) must not swallow the STOP; only the member's own later START may."""
    church, number = await church_with_number(msg_client, registry_conn, sim)
    phone = random_number()
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        member_id = await _add_member(db, phone, changed_at="2024-05-01T12:00:00Z")
        sent = await sim_inbound(msg_client, sim, phone, number, "QUIT",
                                 occurred_at="2024-05-01T11:59:00+00:00")
        row = await wait_until(lambda: _done(registry_conn, sent["event_id"]))
        assert row["last_error"] == "opted_out"
        assert await db.fetchval("SELECT opt_in FROM members WHERE id = $1", member_id) == \
            "opted_out"
        # a START older than that change is stale (opt-in only ever moves forward in time)
        sent = await sim_inbound(msg_client, sim, phone, number, "UNSTOP",
                                 occurred_at="2024-05-01T11:59:30+00:00")
        row = await wait_until(lambda: _done(registry_conn, sent["event_id"]))
        assert row["last_error"] == "stale_keyword"
        assert await db.fetchval("SELECT count(*) FROM outbox") == 1
