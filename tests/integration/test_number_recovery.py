"""A released number's recovery window, through the carrier simulator over real HTTP: archived
(kept at the carrier, still routing STOP and texts to its church, not sendable, nobody else's),
recovered within the window (active and sending again), released at the carrier by the
worker's sweep once the window is over (then not recoverable), and a carrier fault during the
sweep retried later."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.sending_fixtures import *  # noqa: F403
from tests.integration.sending_fixtures import (
    Sending,
    inbox_row,
    problem,
    random_number,
    register,
    running_worker,
    sim_inbound,
    states_are,
    wait_until,
)
from ywmessaging.config import Settings


@pytest.fixture
def send_overrides() -> dict[str, Any]:
    """One number per church (YWM_NUMBERS_PER_CHURCH=1): the limit a recovery must respect."""
    return {"numbers_per_church": 1}


async def _done(registry_conn: Any, event_id: str) -> Any:
    row = await inbox_row(registry_conn, event_id)
    return row if row is not None and row["state"] in ("done", "ignored") else None


async def _list(sending: Sending, church: Any, query: str = "") -> list[dict[str, Any]]:
    resp = await sending.client.get(f"/api/v1/numbers{query}", headers=church.auth)
    assert resp.status == 200
    numbers: list[dict[str, Any]] = (await resp.json())["numbers"]
    return numbers


async def _release(sending: Sending, church: Any, number: str) -> None:
    resp = await sending.client.delete(f"/api/v1/numbers/{number}", headers=church.auth)
    assert resp.status == 204, await resp.text()


async def _recover(sending: Sending, church: Any, number: str) -> Any:
    return await sending.client.post(f"/api/v1/numbers/{number}/recover", headers=church.auth)


async def _row(sending: Sending, number: str) -> Any:
    return await sending.registry_conn.fetchrow(
        "SELECT * FROM phone_numbers WHERE e164 = $1", number)


async def _window_over(sending: Sending, number: str) -> None:
    """Move time: the recovery window (and any retry backoff) lies in the past."""
    await sending.registry_conn.execute(
        "UPDATE phone_numbers SET release_after = now() - interval '1 second', "
        "release_next_at = NULL WHERE e164 = $1", number)


async def _active(sending: Sending, number: str) -> bool:
    row = await _row(sending, number)
    return row is not None and row["status"] == "active"


async def _actions(sending: Sending, church: Any) -> list[tuple[str, str]]:
    async with sending.db(church) as db:
        return [(r["action"], r["actor_kind"]) for r in await db.fetch(
            "SELECT action, actor_kind FROM audit_log WHERE target_type = 'phone_number' "
            "ORDER BY id")]


async def test_released_number_is_archived_then_recovered_and_sends_again(
        sending: Sending, send_settings: Settings) -> None:
    church, number, phones = await sending.church(members=2)
    other = await register(sending.client)
    await _release(sending, church, number)
    # archived: listed with its window, kept at the carrier, no longer the sender
    [listed] = await _list(sending, church)
    assert (listed["phone_number"], listed["status"]) == (number, "archived")
    release_after = datetime.fromisoformat(listed["release_after"])
    expected = datetime.now(UTC) + timedelta(days=send_settings.number_recovery_days)
    assert abs((release_after - expected).total_seconds()) < 60
    assert await _list(sending, church, "?status=active") == []
    assert [n["phone_number"] for n in await _list(sending, church, "?status=archived")] == [
        number]
    bad = await sending.client.get("/api/v1/numbers?status=gone", headers=church.auth)
    await problem(bad, 422, "validation_failed")
    assert sending.sim.state.owns(number)
    async with sending.db(church) as db:
        assert await db.fetchval("SELECT sender_number FROM settings") is None
    resp = await sending.client.post("/api/v1/broadcasts", headers=church.auth,
                                     json={"body": "x", "target": {"all": True}})
    await problem(resp, 409, "no_sender_number")
    # releasing again changes nothing; it is still this church's: STOP and texts to it count
    await _release(sending, church, number)
    assert (await _row(sending, number))["release_after"] == release_after
    stop = await sim_inbound(sending.client, sending.sim, phones[0], number, "STOP")
    row = await wait_until(lambda: _done(sending.registry_conn, stop["event_id"]))
    assert (row["state"], row["last_error"], row["tenant_id"]) == (
        "done", "opted_out", uuid.UUID(church.tenant_id))
    text = await sim_inbound(sending.client, sending.sim, phones[1], number, "Still there?")
    row = await wait_until(lambda: _done(sending.registry_conn, text["event_id"]))
    assert (row["last_error"], row["tenant_id"]) == ("appended", uuid.UUID(church.tenant_id))
    async with sending.db(church) as db:
        assert await db.fetchval("SELECT opt_in FROM members WHERE phone = $1",
                                 phones[0]) == "opted_out"
        assert await db.fetchval("SELECT count(*) FROM consent_events WHERE kind = 'opt_out'") \
            == 1
        assert await db.fetchval("SELECT count(*) FROM conversation_messages "
                                 "WHERE direction = 'inbound' AND body = 'Still there?'") == 1
    # nobody else can buy it or recover it meanwhile
    taken = await sending.client.post("/api/v1/numbers", headers=other.auth,
                                      json={"phone_number": number})
    await problem(taken, 409, "number_taken")
    await problem(await _recover(sending, other, number), 404, "number_not_found")
    await problem(await _recover(sending, church, random_number()), 404, "number_not_found")
    # recovered within the window: active, the sender again; two at once and a third later
    # all answer the same (the first one recovers, the others find it done)
    first = await asyncio.gather(*(_recover(sending, church, number) for _ in range(2)))
    for resp in [*first, await _recover(sending, church, number)]:
        body = await resp.json()
        assert resp.status == 200, body
        assert (body["phone_number"], body["status"], body["release_after"]) == (
            number, "active", None)
    row = await _row(sending, number)
    assert (row["status"], row["release_after"], row["archived_at"]) == ("active", None, None)
    async with sending.db(church) as db:
        assert await db.fetchval("SELECT sender_number FROM settings") == number
    assert await _actions(sending, church) == [
        ("number.release", "admin"), ("number.recover", "admin")]
    # and it sends: the broadcast goes out from the recovered number
    sending.sim.state.messages.clear()
    async with running_worker(sending.client, send_settings):
        doc = await sending.broadcast(church, {"body": "Back again", "target": {"all": True}})
        async with sending.db(church) as db:
            await wait_until(lambda: states_are(db, doc["id"], {"delivered": 1}))
    sent = [(m["from"]["phone_number"], m["to"][0]["phone_number"], m["text"])
            for m in sending.sim.state.messages if m["text"] == "Back again"]
    assert sent == [(number, phones[1], "Back again")]


async def test_after_the_window_the_sweep_releases_it_and_it_cannot_be_recovered(
        sending: Sending, send_settings: Settings) -> None:
    church, number, phones = await sending.church(members=1)
    await _release(sending, church, number)
    await _window_over(sending, number)
    await problem(await _recover(sending, church, number), 410, "number_recovery_expired")
    async with running_worker(sending.client, send_settings, run=False) as worker:
        assert await worker.number_releases_round() >= 1
        assert await _row(sending, number) is None
        assert sending.sim.state.number(number) is None    # released at the carrier
        assert await worker.number_releases_round() == 0   # nothing left to do
    assert await _list(sending, church) == []
    await problem(await _recover(sending, church, number), 404, "number_not_found")
    assert await _actions(sending, church) == [
        ("number.release", "admin"), ("number.released", "system")]
    # a text to it now reaches nobody
    late = await sim_inbound(sending.client, sending.sim, phones[0], number, "Hello?")
    row = await wait_until(lambda: _done(sending.registry_conn, late["event_id"]))
    assert (row["state"], row["last_error"]) == ("ignored", "unknown_number")


async def test_a_carrier_fault_during_the_sweep_is_retried_later(
        sending: Sending, send_settings: Settings) -> None:
    church, number, _ = await sending.church()
    await _release(sending, church, number)
    await _window_over(sending, number)
    await sending.fault(kind="release_error", count=1)   # the carrier answers 500 once
    async with running_worker(sending.client, send_settings, run=False) as worker:
        await worker.number_releases_round()
        row = await _row(sending, number)
        assert (row["status"], row["release_attempts"], row["release_error"]) == (
            "releasing", 1, "carrier:10007")
        assert row["release_next_at"] > datetime.now(UTC) + timedelta(seconds=30)
        assert sending.sim.state.owns(number)   # still ours, still billed
        await problem(await _recover(sending, church, number), 410, "number_recovery_expired")
        await worker.number_releases_round()    # not due yet: left alone
        assert (await _row(sending, number))["release_attempts"] == 1
        await _window_over(sending, number)     # the backoff has passed
        await worker.number_releases_round()
        assert await _row(sending, number) is None
        assert sending.sim.state.number(number) is None


async def test_a_sweeper_that_died_mid_release_is_finished_by_the_next(
        sending: Sending, send_settings: Settings) -> None:
    """A claim (`releasing`) whose sweeper died is taken again once its hold ends; a sweep
    that runs again after the carrier released the number adds no second audit line."""
    church, number, _ = await sending.church()
    await _release(sending, church, number)
    await _window_over(sending, number)
    archived_at = (await _row(sending, number))["archived_at"]
    # claimed by a sweeper that died before asking the carrier
    await sending.registry_conn.execute(
        "UPDATE phone_numbers SET status = 'releasing', "
        "release_next_at = now() + interval '1 hour' WHERE e164 = $1", number)
    async with running_worker(sending.client, send_settings, run=False) as worker:
        await worker.number_releases_round()    # still held by the dead sweeper
        assert (await _row(sending, number))["status"] == "releasing"
        assert sending.sim.state.owns(number)
        await sending.registry_conn.execute(
            "UPDATE phone_numbers SET release_next_at = now() WHERE e164 = $1", number)
        await worker.number_releases_round()
        assert await _row(sending, number) is None
        assert sending.sim.state.number(number) is None
        # as if the row's deletion had been lost after the carrier and the audit line
        await sending.registry_conn.execute(
            "INSERT INTO phone_numbers (e164, tenant_id, status, archived_at, release_after) "
            "VALUES ($1, $2, 'releasing', $3, now() - interval '1 day')",
            number, uuid.UUID(church.tenant_id), archived_at)
        await worker.number_releases_round()
        assert await _row(sending, number) is None
    assert await _actions(sending, church) == [
        ("number.release", "admin"), ("number.released", "system")]


async def test_recovery_refused_when_the_church_has_another_number(
        sending: Sending) -> None:
    church, number, _ = await sending.church()
    await _release(sending, church, number)
    second = random_number()   # bought meanwhile: the archived one does not count
    bought = await sending.client.post("/api/v1/numbers", headers=church.auth,
                                       json={"phone_number": second})
    assert bought.status == 201, await bought.text()
    await problem(await _recover(sending, church, number), 409, "number_limit")
    assert (await _row(sending, number))["status"] == "archived"
    # a number the carrier no longer lists cannot be recovered: its window closes
    await wait_until(lambda: _active(sending, second))
    await _release(sending, church, second)
    sending.sim.state.drop_number(number)
    await problem(await _recover(sending, church, number), 410, "number_recovery_expired")
    row = await _row(sending, number)
    assert row["release_after"] <= datetime.now(UTC)
