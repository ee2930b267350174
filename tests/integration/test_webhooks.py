"""POST /webhooks/telnyx: verification before any work, the durable inbox, replays, unknown
numbers, and delivery receipts that only move outbox rows forward."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
import yaml

from tests.integration.carrier_sim_fixtures import *  # noqa: F403
from tests.integration.carrier_sim_fixtures import (
    Client,
    church_with_number,
    envelope,
    inbox_row,
    post_signed,
    problem,
    random_number,
    tenant_db,
    wait_until,
)
from ywmessaging.api.health import OPENAPI_PATH
from ywmessaging.config import Settings
from ywmessaging.db.dsn import PgTarget
from ywmessaging.messaging import signature
from ywmessaging.messaging.carrier import SendRequest
from ywmessaging.messaging.receipts import Receipt, apply_receipt
from ywmessaging.messaging.telnyx import TelnyxCarrier
from ywmessaging.messaging.webhooks import EVENT_ID_MAX
from ywmessaging.sqlq import registry as rq


def _inbound(frm: str, to: str, text: str) -> dict[str, Any]:
    return {"record_type": "message", "direction": "inbound", "id": str(uuid.uuid4()),
            "type": "SMS", "from": {"phone_number": frm}, "to": [{"phone_number": to}],
            "text": text}


async def _settled(registry_conn: Any, event_id: str) -> Any:
    row = await inbox_row(registry_conn, event_id)
    return row if row is not None and row["state"] in ("done", "ignored") else None


async def test_refused_webhooks_store_nothing(msg_client: Any, sim: Any,
                                              registry_conn: Any) -> None:
    body = envelope("message.received", _inbound(random_number(), random_number(), "hi"))
    raw = orjson.dumps(body)
    event_id = body["data"]["id"]
    now = int(time.time())
    good = signature.signed_headers(sim.state.key, raw, at=now)
    other = signature.signed_headers(signature.private_key(signature.generate_seed()), raw)
    cases = [
        ({**good, signature.SIGNATURE_HEADER: other[signature.SIGNATURE_HEADER]},
         "webhook_signature_invalid"),                                     # wrong key
        ({**good, signature.SIGNATURE_HEADER: "%%%not-base64%%%"}, "webhook_signature_invalid"),
        ({signature.TIMESTAMP_HEADER: good[signature.TIMESTAMP_HEADER]},
         "webhook_signature_invalid"),                                     # no signature
        (signature.signed_headers(sim.state.key, raw, at=now - 301), "webhook_timestamp_invalid"),
        (signature.signed_headers(sim.state.key, raw, at=now + 301), "webhook_timestamp_invalid"),
        ({signature.SIGNATURE_HEADER: good[signature.SIGNATURE_HEADER]},
         "webhook_timestamp_invalid"),                                     # no timestamp
    ]
    for headers, code in cases:
        resp = await msg_client.post("/webhooks/telnyx", data=raw,
                                     headers={"Content-Type": "application/json", **headers})
        await problem(resp, 401, code)
    tampered = raw.replace(b'"hi"', b'"STOP"')
    resp = await msg_client.post("/webhooks/telnyx", data=tampered,
                                 headers={"Content-Type": "application/json", **good})
    await problem(resp, 401, "webhook_signature_invalid")
    assert await inbox_row(registry_conn, event_id) is None
    # and the same body, signed properly, is accepted: the refusals above were real
    resp = await post_signed(msg_client, sim, raw)
    assert resp.status == 200
    assert await inbox_row(registry_conn, event_id) is not None


async def test_without_a_public_key_every_webhook_is_refused(
        make_api_client: Callable[[Settings], Awaitable[Client]], msg_settings: Settings,
        sim: Any, registry_conn: Any) -> None:
    client = await make_api_client(msg_settings.with_(telnyx_public_key=None))
    body = envelope("message.received", _inbound(random_number(), random_number(), "hi"))
    resp = await post_signed(client, sim, body)
    await problem(resp, 401, "webhook_key_missing")
    assert await inbox_row(registry_conn, body["data"]["id"]) is None


async def test_a_signed_body_that_is_not_an_event_is_400(msg_client: Any, sim: Any) -> None:
    for raw in (b"not json", b"[]", b'{"data": {"id": 5}}', orjson.dumps({"data": {
            "id": "x" * 300, "event_type": "message.received"}})):
        resp = await post_signed(msg_client, sim, raw)
        await problem(resp, 400, "webhook_malformed")


async def test_a_replay_is_acknowledged_and_applied_once(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget) -> None:
    church, number = await church_with_number(msg_client, registry_conn, sim)
    body = envelope("message.received", _inbound(random_number(), number, "Prayer request"))
    first = await post_signed(msg_client, sim, body)
    assert (first.status, (await first.json())["status"]) == (200, "stored")
    await wait_until(lambda: _settled(registry_conn, body["data"]["id"]))
    body["meta"]["attempt"] = 2   # Telnyx's retry: same event id, new attempt number
    again = await post_signed(msg_client, sim, body)
    assert (again.status, (await again.json())["status"]) == (200, "duplicate")
    # even if the inbox row is gone (pruned), the tenant's own dedupe holds
    await registry_conn.execute("DELETE FROM webhook_inbox WHERE event_id = $1",
                                body["data"]["id"])
    third = await post_signed(msg_client, sim, body)
    assert (await third.json())["status"] == "stored"
    row = await wait_until(lambda: _settled(registry_conn, body["data"]["id"]))
    assert (row["state"], row["last_error"]) == ("done", "duplicate")
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        assert await db.fetchval("SELECT count(*) FROM conversation_messages") == 1
        assert await db.fetchval("SELECT unread_count FROM conversations") == 1
    count = await registry_conn.fetchval(
        "SELECT count(*) FROM webhook_inbox WHERE event_id = $1", body["data"]["id"])
    assert count == 1
    # /metrics: two stored (the first and the one after the prune), one duplicate, two done
    metrics = await _webhook_metrics(msg_client)
    assert metrics == {"stored": 2.0, "duplicate": 1.0, "done": 2.0}, metrics


async def _webhook_metrics(client: Any) -> dict[str, float]:
    """ywm_webhook_events_total{event_type="message.received"} by outcome, from /metrics."""
    text = await (await client.get("/metrics")).text()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("ywm_webhook_events_total{") and "message.received" in line:
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            found[outcome] = float(line.split()[-1])
    return found


async def test_inbound_for_an_unknown_number_is_recorded_and_answered_200(
        msg_client: Any, sim: Any, registry_conn: Any) -> None:
    nobody = random_number()
    async with msg_client.session.post(f"{sim.base_url}/sim/inbound", json={
            "from": random_number(), "to": nobody, "text": "hello?"}) as resp:
        data = (await resp.json())["data"]
    assert data["status"] == 200
    row = await wait_until(lambda: _settled(registry_conn, data["event_id"]))
    assert (row["state"], row["last_error"], row["tenant_id"]) == (
        "ignored", "unknown_number", None)


async def _outbox_row(db: Any, carrier_id: str | None, state: str, phone: str) -> Any:
    return await db.fetchval(
        "INSERT INTO outbox (to_phone, body, state, carrier_message_id, lease_expires_at)"
        " VALUES ($1, 'Service at 10', $2, $3, CASE WHEN $2 = 'sending' THEN now() END)"
        " RETURNING id", phone, state, carrier_id)


async def test_receipts_move_rows_forward_only(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget,
        msg_settings: Settings) -> None:
    church, number = await church_with_number(msg_client, registry_conn, sim)
    tenant = uuid.UUID(church.tenant_id)
    q = rq(msg_settings.sql_dir)
    carrier = TelnyxCarrier(api_base=sim.base_url, api_key="k")
    try:
        async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
            phone = random_number()
            row_id = await _outbox_row(db, None, "sending", phone)
            # what part B's worker does: send, then record the id and the tenant
            sent = await carrier.send(SendRequest(number, phone, "Service at 10"))
            await db.execute("UPDATE outbox SET state = 'sent', carrier_message_id = $2,"
                             " lease_expires_at = NULL WHERE id = $1", row_id,
                             sent.carrier_message_id)
            await q.insert_outbound_index(registry_conn, sent.carrier_message_id, tenant)
            await wait_until(lambda: db.fetchval(
                "SELECT state = 'delivered' FROM outbox WHERE id = $1", row_id))
            # a late message.sent after message.finalized changes nothing
            late = envelope("message.sent", {"id": sent.carrier_message_id, "to": [
                {"phone_number": phone, "status": "sent"}]})
            assert (await post_signed(msg_client, sim, late)).status == 200
            settled = await wait_until(lambda: _settled(registry_conn, late["data"]["id"]))
            assert (settled["state"], settled["last_error"]) == ("done", "stale")
            row = await db.fetchrow("SELECT * FROM outbox WHERE id = $1", row_id)
            assert (row["state"], row["delivered_at"] is not None) == ("delivered", True)
            # an `unknown` row (send outcome lost) may still learn it failed
            lost_id = await _outbox_row(db, "lost-1", "unknown", phone)
            await q.insert_outbound_index(registry_conn, "lost-1", tenant)
            failed = envelope("message.finalized", {
                "id": "lost-1", "to": [{"phone_number": phone, "status": "delivery_failed"}],
                "errors": [{"code": "40008", "title": "Undeliverable"}]})
            await post_signed(msg_client, sim, failed)
            await wait_until(lambda: _settled(registry_conn, failed["data"]["id"]))
            lost = await db.fetchrow("SELECT state, error_code FROM outbox WHERE id = $1",
                                     lost_id)
            assert (lost["state"], lost["error_code"]) == ("failed", "40008")
    finally:
        await carrier.close()


async def test_a_receipt_before_the_sender_recorded_the_id_waits_for_it(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget,
        msg_settings: Settings) -> None:
    church, _ = await church_with_number(msg_client, registry_conn, sim)
    carrier_id = f"early-{uuid.uuid4()}"
    early = envelope("message.finalized", {"id": carrier_id, "to": [
        {"phone_number": "+12065550123", "status": "delivered"}]})
    assert (await post_signed(msg_client, sim, early)).status == 200
    waiting = await wait_until(lambda: _failed_with(registry_conn, early["data"]["id"]))
    assert waiting["last_error"] == "unknown_message"
    # the sweeper reports the waiting event in the inbox backlog gauge
    await wait_until(lambda: _gauge(msg_client, 'ywm_webhook_inbox_events{state="failed"}'))
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        row_id = await _outbox_row(db, carrier_id, "sent", "+12065550123")
        await rq(msg_settings.sql_dir).insert_outbound_index(registry_conn, carrier_id,
                                                             uuid.UUID(church.tenant_id))
        await wait_until(lambda: _settled(registry_conn, early["data"]["id"]))
        assert await db.fetchval("SELECT state FROM outbox WHERE id = $1", row_id) == \
            "delivered"


class _AfterFirstRow:
    """A real connection that runs `then` right after its first `fetchrow` returns: a
    statement of another session lands between two statements of this one."""

    def __init__(self, conn: Any, then: Callable[[], Awaitable[Any]]) -> None:
        self._conn, self._then, self._done = conn, then, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def fetchrow(self, *args: Any, **kwargs: Any) -> Any:
        row = await self._conn.fetchrow(*args, **kwargs)
        if not self._done:
            self._done = True
            await self._then()
        return row


async def test_a_receipt_racing_the_senders_commit_is_applied_not_dropped(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget,
        msg_settings: Settings) -> None:
    """The sender stores the carrier id and `sent` in a transaction that commits after the
    receipt's UPDATE looked (no row had the id) but before its check of the row's state (which
    then sees `sent`): the `delivered` receipt must still be applied, not called stale (a row
    left `sent` for good, seen as a flaky killed-worker test)."""
    church, _ = await church_with_number(msg_client, registry_conn, sim)
    carrier_id = f"race-{uuid.uuid4()}"
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as sender, \
            tenant_db(pg_admin, registry_conn, church.tenant_id) as receiver:
        row_id = await _outbox_row(sender, None, "sending", "+12065550124")
        tx = sender.transaction()
        await tx.start()
        await sender.execute("UPDATE outbox SET state = 'sent', carrier_message_id = $2, "
                             "sent_at = now() WHERE id = $1", row_id, carrier_id)
        receipt = Receipt(f"evt-{uuid.uuid4()}", "message.finalized", datetime.now(UTC),
                          carrier_id, "delivered")
        outcome = await apply_receipt(_AfterFirstRow(receiver, tx.commit), msg_settings,
                                      receipt)
        assert outcome == "applied"
        assert await receiver.fetchval("SELECT state FROM outbox WHERE id = $1", row_id) == \
            "delivered"


async def _gauge(client: Any, series: str) -> float:
    """The value of one series on /metrics (0 when absent)."""
    text = await (await client.get("/metrics")).text()
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


async def _failed_with(registry_conn: Any, event_id: str) -> Any:
    row = await inbox_row(registry_conn, event_id)
    return row if row is not None and row["state"] == "failed" else None


async def test_an_event_id_a_church_database_cannot_hold_is_refused_not_acknowledged(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget) -> None:
    """Event ids: one limit at the endpoint, in the spec, in the inbox and in the church
    database, so an acknowledged event can always be applied (issue #16, item 3)."""
    church, number = await church_with_number(msg_client, registry_conn, sim)
    too_long = envelope("message.received", _inbound(random_number(), number, "hi"),
                        event_id=uuid.uuid4().hex.ljust(EVENT_ID_MAX + 1, "e"))
    resp = await post_signed(msg_client, sim, too_long)
    await problem(resp, 400, "webhook_malformed")
    assert await inbox_row(registry_conn, too_long["data"]["id"]) is None
    longest = envelope("message.received", _inbound(random_number(), number, "Prayer request"),
                       event_id=uuid.uuid4().hex.ljust(EVENT_ID_MAX, "e"))
    resp = await post_signed(msg_client, sim, longest)
    assert (resp.status, (await resp.json())["status"]) == (200, "stored")
    row = await wait_until(lambda: _settled(registry_conn, longest["data"]["id"]))
    assert row["state"] == "done"
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        assert await db.fetchval("SELECT count(*) FROM inbound_events "
                                 "WHERE carrier_event_id = $1", longest["data"]["id"]) == 1
    spec = yaml.safe_load(OPENAPI_PATH.read_text())
    event_id = spec["components"]["schemas"]["TelnyxEvent"]["properties"]["data"]["properties"]
    assert event_id["id"]["maxLength"] == EVENT_ID_MAX
    with pytest.raises(asyncpg.CheckViolationError):   # the inbox holds no longer id either
        await registry_conn.execute(
            "INSERT INTO webhook_inbox (provider, event_id, event_type, payload) "
            "VALUES ('telnyx', $1, 'message.received', '{}')", "e" * (EVENT_ID_MAX + 1))


async def test_delivered_at_is_never_before_sent_at(
        msg_client: Any, sim: Any, registry_conn: Any, pg_admin: PgTarget,
        msg_settings: Settings) -> None:
    # The carrier stamps its receipt when it accepts the message, a moment before the sender
    # stores `sent_at` (and clocks differ): the receipt's time may be the earlier one.
    church, _ = await church_with_number(msg_client, registry_conn, sim)
    tenant = uuid.UUID(church.tenant_id)
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        ids = {}
        for status in ("delivered", "delivery_failed"):
            carrier_id = f"skew-{uuid.uuid4()}"
            ids[status] = await _outbox_row(db, carrier_id, "sent", "+12065550188")
            await db.execute("UPDATE outbox SET sent_at = now() WHERE id = $1", ids[status])
            await rq(msg_settings.sql_dir).insert_outbound_index(registry_conn, carrier_id,
                                                                 tenant)
            earlier = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
            event = envelope("message.finalized", {"id": carrier_id, "to": [
                {"phone_number": "+12065550188", "status": status}]}, occurred_at=earlier)
            assert (await post_signed(msg_client, sim, event)).status == 200
            await wait_until(lambda ev=event: _settled(registry_conn, ev["data"]["id"]))
        rows = {s: await db.fetchrow("SELECT state, sent_at, delivered_at, failed_at FROM outbox"
                                     " WHERE id = $1", i) for s, i in ids.items()}
    assert rows["delivered"]["state"] == "delivered"
    assert rows["delivered"]["delivered_at"] >= rows["delivered"]["sent_at"]
    assert rows["delivery_failed"]["state"] == "failed"
    assert rows["delivery_failed"]["failed_at"] >= rows["delivery_failed"]["sent_at"]
