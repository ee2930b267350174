"""Conversations: the inbox by last activity with unread counts, threads, one-to-one replies
through the outbox (sent by a worker to the simulator), read marks, status, isolation."""

from __future__ import annotations

from typing import Any

from tests.integration.sending_fixtures import *  # noqa: F403
from tests.integration.sending_fixtures import (
    Sending,
    problem,
    running_worker,
    sim_inbound,
    wait_until,
)
from ywmessaging.config import Settings


async def _get(sending: Sending, church: Any, path: str) -> Any:
    resp = await sending.client.get(path, headers=church.auth)
    doc = await resp.json()
    assert resp.status == 200, doc
    return doc


async def test_inbox_thread_reply_read_and_status(
        sending: Sending, send_settings: Settings) -> None:
    church, number, phones = await sending.church(members=3)
    for i, phone in enumerate(phones):
        await sim_inbound(sending.client, sending.sim, phone, number, f"Hello {i}")

    async def three() -> Any:
        page = await _get(sending, church, "/api/v1/conversations")
        return page if len(page["items"]) == 3 else None

    inbox = await wait_until(three)
    assert [c["member"]["phone"] for c in inbox["items"]] == list(reversed(phones))
    first = inbox["items"][-1]
    assert first["unread_count"] == 1 and first["last_message"]["body"] == "Hello 0"
    assert first["last_message"]["direction"] == "inbound" and first["status"] == "open"
    cid = first["id"]

    resp = await sending.client.post(f"/api/v1/conversations/{cid}/messages",
                                     headers=church.auth, json={"body": "Hi! See you Sunday"})
    sent = await resp.json()
    assert resp.status == 201 and sent["delivery_status"] == "queued", sent

    async def status_is(*wanted: str) -> bool:
        page = await _get(sending, church, f"/api/v1/conversations/{cid}/messages")
        return page["items"][0]["delivery_status"] in wanted

    # A receipt webhook the simulator could not deliver (three tries within seconds, as
    # Telnyx) is settled by the worker's carrier lookup, as in production, but 3 s after the
    # send rather than 15 minutes; so the worker runs until the reply is delivered.
    async with running_worker(sending.client, send_settings.with_(receipt_check_after=3.0)):
        await wait_until(lambda: status_is("sent", "delivered"), timeout=30)
        await _rest_of_the_thread(sending, church, cid, phones)
        try:
            await wait_until(lambda: status_is("delivered"), timeout=30)
        except AssertionError:
            raise AssertionError(await _receipt_trail(sending, church)) from None


async def _rest_of_the_thread(sending: Sending, church: Any, cid: str,
                              phones: list[str]) -> None:
    assert [(m["to"][0]["phone_number"], m["text"]) for m in sending.sim.state.messages] == [
        (phones[0], "Hi! See you Sunday")]
    thread = await _get(sending, church, f"/api/v1/conversations/{cid}/messages?limit=1")
    assert thread["items"][0]["direction"] == "outbound" and thread["next_cursor"]
    older = await _get(sending, church, f"/api/v1/conversations/{cid}/messages?limit=1"
                                        f"&cursor={thread['next_cursor']}")
    assert [m["body"] for m in older["items"]] == ["Hello 0"] and older["next_cursor"] is None

    inbox = await _get(sending, church, "/api/v1/conversations?limit=2")
    assert inbox["items"][0]["id"] == cid                      # the reply is the latest activity
    one = await _get(sending, church, f"/api/v1/conversations/{cid}")   # reads as it is listed
    assert one["last_message"] == inbox["items"][0]["last_message"] is not None
    rest = await _get(sending, church, f"/api/v1/conversations?limit=2&cursor="
                                       f"{inbox['next_cursor']}")
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None

    read = await (await sending.client.post(f"/api/v1/conversations/{cid}/read",
                                            headers=church.auth)).json()
    assert read["unread_count"] == 0
    closed = await (await sending.client.patch(f"/api/v1/conversations/{cid}",
                                               json={"status": "closed"},
                                               headers=church.auth)).json()
    assert closed["status"] == "closed"
    only = await _get(sending, church, "/api/v1/conversations?status=closed")
    assert [c["id"] for c in only["items"]] == [cid]
    resp = await sending.client.patch(f"/api/v1/conversations/{cid}", headers=church.auth,
                                      json={"status": "deleted"})
    await problem(resp, 422, "validation_failed")
    resp = await sending.client.get("/api/v1/conversations?cursor=xyz", headers=church.auth)
    await problem(resp, 400, "invalid_cursor")



async def _receipt_trail(sending: Sending, church: Any) -> str:
    """Where a reply's receipts went: its outbox row, its conversation message, the events
    applied, the registry inbox rows and index entry, and the simulator's delivery log."""
    async with sending.db(church) as db:
        outbox = [dict(r) for r in await db.fetch("SELECT * FROM outbox")]
        messages = [dict(r) for r in await db.fetch(
            "SELECT id, direction, delivery_status, carrier_message_id "
            "FROM conversation_messages")]
        applied = [dict(r) for r in await db.fetch("SELECT * FROM inbound_events")]
    ids = [o["carrier_message_id"] for o in outbox]
    inbox = [dict(r) for r in await sending.registry_conn.fetch(
        "SELECT id, event_id, event_type, state, attempts, last_error, tenant_id, "
        "received_at, processed_at, next_attempt_at FROM webhook_inbox "
        "WHERE payload->'data'->'payload'->>'id' = ANY($1::text[])", ids)]
    index = [dict(r) for r in await sending.registry_conn.fetch(
        "SELECT * FROM outbound_message_index WHERE carrier_message_id = ANY($1)", ids)]
    return (f"the reply was never delivered:\noutbox={outbox}\nmessages={messages}\n"
            f"applied={applied}\ninbox={inbox}\nindex={index}\n"
            f"sim deliveries={sending.sim.state.deliveries}\n"
            f"sim lookups={sending.sim.state.counters['lookups']}")



async def test_reply_refusals_and_isolation(sending: Sending) -> None:
    church, number, phones = await sending.church(members=2)
    await sim_inbound(sending.client, sending.sim, phones[1], number, "Question")

    async def conversation_id() -> Any:
        page = await _get(sending, church, "/api/v1/conversations")
        return page["items"][0]["id"] if page["items"] else None

    cid = await wait_until(conversation_id)
    other, _, _ = await sending.church()
    for method, path in (("get", f"/api/v1/conversations/{cid}"),
                         ("get", f"/api/v1/conversations/{cid}/messages"),
                         ("post", f"/api/v1/conversations/{cid}/read")):
        resp = await getattr(sending.client, method)(path, headers=other.auth)
        await problem(resp, 404, "not_found")
    resp = await sending.client.post(f"/api/v1/conversations/{cid}/messages",
                                     headers=other.auth, json={"body": "sneaky"})
    await problem(resp, 404, "not_found")
    resp = await sending.client.post(f"/api/v1/conversations/{cid}/messages",
                                     headers=church.auth, json={"body": " "})
    await problem(resp, 422, "validation_failed")
    async with sending.db(church) as db:
        await db.execute("UPDATE members SET opt_in = 'opted_out' WHERE phone = $1", phones[1])
        resp = await sending.client.post(f"/api/v1/conversations/{cid}/messages",
                                         headers=church.auth, json={"body": "Still there?"})
        await problem(resp, 409, "member_opted_out")
        await db.execute("UPDATE members SET opt_in = 'opted_in'")
        # no number at all (as after releasing the last one: conversations lose theirs too)
        await db.execute("UPDATE settings SET sender_number = NULL")
        await db.execute("UPDATE conversations SET church_number = NULL")
        resp = await sending.client.post(f"/api/v1/conversations/{cid}/messages",
                                         headers=church.auth, json={"body": "Hello?"})
        await problem(resp, 409, "no_sender_number")
        assert await db.fetchval("SELECT count(*) FROM outbox") == 0
        assert await db.fetchval(
            "SELECT count(*) FROM conversation_messages WHERE direction = 'outbound'") == 0
