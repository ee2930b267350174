"""The outbox worker end to end through the carrier simulator over real HTTP: delivery receipts
come back through the app's webhook. At most once per recipient, no silent loss."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import ROOMY_CATALOGUE, TEST_SECRET
from tests.integration.sending_fixtures import *  # noqa: F403
from tests.integration.sending_fixtures import (
    Sending,
    outbox_states,
    running_worker,
    sim_inbound,
    sim_numbers,
    states_are,
    wait_until,
)
from ywmessaging.config import Settings
from ywmessaging.messaging.outbox import FLUSH_ROWS


async def test_broadcast_to_1000_members_reaches_each_opted_in_member_once_delivered(
        sending: Sending, send_settings: Settings) -> None:
    church, _, phones = await sending.church(members=1000, opted_out=25)
    settings = send_settings.with_(send_batch_size=100)
    async with running_worker(sending.client, settings), \
            running_worker(sending.client, settings):  # two workers share the queue
        doc = await sending.broadcast(church, {"body": "Easter service at 9 and 11",
                                               "target": {"all": True}})
        assert doc["recipient_count"] == 975
        async with sending.db(church) as db:
            await wait_until(lambda: states_are(db, doc["id"], {"delivered": 975}),
                             timeout=60, every=0.25)
    sent = sim_numbers(sending.sim)
    assert len(sent) == len(set(sent)) == 975          # exactly once each
    assert set(sent) == set(phones[25:])               # every opted-in member, no opted-out
    detail = await (await sending.client.get(f"/api/v1/broadcasts/{doc['id']}",
                                             headers=church.auth)).json()
    assert detail["status"] == "sent" and detail["counts"]["delivered"] == 975


async def test_a_member_who_sent_stop_gets_nothing_afterwards(
        sending: Sending, send_settings: Settings) -> None:
    church, number, phones = await sending.church(members=3)
    async with sending.db(church) as db:
        stop_reply = await db.fetchval("SELECT stop_reply FROM settings")
        # Queued while no worker runs; the member opts out before a worker claims the row.
        waiting = await sending.broadcast(church, {"body": "Queued earlier",
                                                   "target": {"all": True}})
        await sim_inbound(sending.client, sending.sim, phones[0], number, "STOP")
        await wait_until(lambda: db.fetchval(
            "SELECT opt_in = 'opted_out' FROM members WHERE phone = $1", phones[0]))
        async with running_worker(sending.client, send_settings):
            later = await sending.broadcast(church, {"body": "Sent later",
                                                     "target": {"all": True}})
            assert later["recipient_count"] == 2            # resolved without them
            await wait_until(lambda: states_are(db, later["id"], {"delivered": 2}), timeout=15)
            await wait_until(lambda: states_are(
                db, waiting["id"], {"delivered": 2, "skipped": 1}), timeout=15)
    to_them = [m["text"] for m in sending.sim.state.messages
               if m["to"][0]["phone_number"] == phones[0]]
    assert "Queued earlier" not in to_them and "Sent later" not in to_them
    assert to_them in ([], [stop_reply])  # at most the one confirmation


async def test_429_storms_and_500s_are_retried_and_paced(
        sending: Sending, send_settings: Settings) -> None:
    church, _, phones = await sending.church(members=40)
    await sending.fault(kind="429", count=12, retry_after=0.2)
    await sending.fault(kind="500", count=6)
    settings = send_settings.with_(send_rate_per_number=20.0, send_max_attempts=8)
    async with running_worker(sending.client, settings):
        doc = await sending.broadcast(church, {"body": "Storm", "target": {"all": True}})
        async with sending.db(church) as db:
            await wait_until(lambda: states_are(db, doc["id"], {"delivered": 40}),
                             timeout=40, every=0.2)
            attempts = await db.fetchval("SELECT sum(attempts) FROM outbox")
    assert sorted(sim_numbers(sending.sim)) == sorted(phones)  # each once, none lost
    assert sending.sim.state.counters["faulted"] == 18
    assert attempts == 40 + 18                                   # every refusal was retried
    stamps = sorted(datetime.fromisoformat(m["received_at"]) for m in sending.sim.state.messages)
    spread = (stamps[-1] - stamps[0]).total_seconds()
    assert spread >= (40 - 20) / 20 * 0.9                        # 20/s after a burst of 20


async def test_carrier_opt_out_fails_the_row_and_opts_the_member_out(
        sending: Sending, send_settings: Settings) -> None:
    church, _, phones = await sending.church(members=1)
    await sending.fault(kind="opted_out", count=1)
    async with running_worker(sending.client, send_settings):
        doc = await sending.broadcast(church, {"body": "Hi", "target": {"all": True}})
        async with sending.db(church) as db:
            await wait_until(lambda: states_are(db, doc["id"], {"failed": 1}))
            row = await db.fetchrow("SELECT error_code, attempts FROM outbox")
            member = await db.fetchrow("SELECT opt_in, opted_out_reason FROM members")
            consent = await db.fetchrow("SELECT kind, source FROM consent_events")
    assert (row["error_code"], row["attempts"]) == ("40300", 1)   # permanent: no retry
    assert member["opt_in"] == "opted_out"
    assert (consent["kind"], consent["source"]) == ("opt_out", "carrier")
    assert sim_numbers(sending.sim) == [] and phones


async def test_interrupted_sends_become_unknown_and_are_never_resent(
        sending: Sending, send_settings: Settings) -> None:
    church, _, phones = await sending.church(members=4)
    doc = await sending.broadcast(church, {"body": "x", "target": {"all": True}})
    async with sending.db(church) as db:  # a worker died with two rows in flight
        await db.execute(
            "UPDATE outbox SET state = 'sending', attempts = 1, lease_owner = 'dead:1', "
            "lease_expires_at = now() - interval '1 second' "
            "WHERE to_phone = ANY($1::text[])", phones[:2])
        async with running_worker(sending.client, send_settings):
            await wait_until(lambda: states_are(db, doc["id"], {"unknown": 2, "delivered": 2}))
        codes = {r["error_code"] for r in await db.fetch(
            "SELECT error_code FROM outbox WHERE state = 'unknown'")}
    assert sorted(sim_numbers(sending.sim)) == sorted(phones[2:])
    assert codes == {"lease_expired"}


async def test_a_dead_workers_untried_rows_are_sent_once_and_its_broadcasts_finish(
        sending: Sending, send_settings: Settings) -> None:
    """A worker died holding two broadcasts: `first` with two sends in flight and four rows
    claimed but never tried; `second` with its last three rows in flight. Only the rows in
    flight become `unknown`; the untried ones are sent once; both broadcasts end `sent`."""
    church, _, phones = await sending.church(members=6)
    first = await sending.broadcast(church, {"body": "first", "target": {"all": True}})
    second = await sending.broadcast(church, {"body": "second", "target": {"all": True}})
    dead = "UPDATE broadcasts SET status = 'sending' WHERE id = ANY($1::uuid[])"
    in_flight = ("UPDATE outbox SET state = 'sending', attempts = 1, lease_owner = 'dead:1', "
                 "lease_expires_at = now() - interval '1 second' "
                 "WHERE broadcast_id = $1 AND to_phone = ANY($2::text[])")
    async with sending.db(church) as db:
        await db.execute(dead, [uuid.UUID(first["id"]), uuid.UUID(second["id"])])
        await db.execute(in_flight, uuid.UUID(first["id"]), phones[:2])
        await db.execute(  # claimed in the same batch, never tried
            "UPDATE outbox SET lease_owner = 'dead:1', "
            "lease_expires_at = now() - interval '1 second' "
            "WHERE broadcast_id = $1 AND to_phone = ANY($2::text[])",
            uuid.UUID(first["id"]), phones[2:])
        await db.execute(in_flight, uuid.UUID(second["id"]), phones[:3])
        await db.execute("UPDATE outbox SET state = 'delivered' "
                         "WHERE broadcast_id = $1 AND to_phone = ANY($2::text[])",
                         uuid.UUID(second["id"]), phones[3:])

        async def finished() -> bool:
            done = [(r["status"], r["completed_at"] is not None) for r in await db.fetch(
                "SELECT status, completed_at FROM broadcasts")]
            return (done == [("sent", True)] * 2
                    and await states_are(db, first["id"], {"unknown": 2, "delivered": 4})
                    and await states_are(db, second["id"], {"unknown": 3, "delivered": 3}))

        async with running_worker(sending.client, send_settings):
            await wait_until(finished)
        retried = await db.fetch("SELECT attempts, error_code FROM outbox "
                                 "WHERE broadcast_id = $1 AND to_phone = ANY($2::text[])",
                                 uuid.UUID(first["id"]), phones[2:])
        unknown = {r["error_code"] for r in await db.fetch(
            "SELECT error_code FROM outbox WHERE state = 'unknown'")}
    texts = [(m["to"][0]["phone_number"], m["text"]) for m in sending.sim.state.messages]
    assert sorted(texts) == sorted((p, "first") for p in phones[2:])  # each once, no "second"
    assert [r["attempts"] for r in retried] == [1, 1, 1, 1]
    assert unknown == {"lease_expired"}


async def test_a_lost_enqueue_is_found_by_reconciliation(
        sending: Sending, send_settings: Settings) -> None:
    church, _, _ = await sending.church(members=2)
    doc = await sending.broadcast(church, {"body": "x", "target": {"all": True}})
    await sending.registry_conn.execute("DELETE FROM tenant_work")  # the enqueue "failed"
    async with running_worker(sending.client, send_settings, run=False) as worker:
        assert await worker.step() is False            # nothing in the queue
        assert await worker.reconcile() >= 1
        due = await sending.registry_conn.fetchval(    # the church is back in the queue
            "SELECT due_at FROM tenant_work WHERE tenant_id = $1", uuid.UUID(church.tenant_id))
        assert due is not None
        async with sending.db(church) as db:
            async def sent() -> bool:
                # drain_all stops when nothing is due at that instant; a send retried after a
                # short backoff (a slow loopback under load) is due a moment later
                await worker.drain_all()
                states = await outbox_states(db, doc["id"])
                return set(states) <= {"sent", "delivered"} and sum(states.values()) == 2
            await wait_until(sent, timeout=30, every=0.2)


async def test_quiet_hours_hold_broadcasts_but_not_replies(
        sending: Sending, send_settings: Settings) -> None:
    church, _, phones = await sending.church(members=2)
    now = datetime.now(UTC)
    async with sending.db(church) as db:
        await db.execute("UPDATE settings SET time_zone = 'UTC', quiet_hours_start = $1, "
                         "quiet_hours_end = $2", (now - timedelta(hours=1)).time(),
                         (now + timedelta(hours=1)).time())
        member = await db.fetchval("SELECT id FROM members WHERE phone = $1", phones[0])
        conv = await db.fetchval("INSERT INTO conversations (member_id) VALUES ($1) "
                                 "RETURNING id", member)
        doc = await sending.broadcast(church, {"body": "Quiet", "target": {"all": True}})
        resp = await sending.client.post(f"/api/v1/conversations/{conv}/messages",
                                         headers=church.auth, json={"body": "Reply"})
        assert resp.status == 201
        async with running_worker(sending.client, send_settings, run=False) as worker:
            await worker.drain_all()
        held = await db.fetch("SELECT state, next_attempt_at FROM outbox WHERE broadcast_id = $1",
                              uuid.UUID(doc["id"]))
    assert {r["state"] for r in held} == {"queued"}
    assert all(r["next_attempt_at"] > now + timedelta(minutes=50) for r in held)
    assert [m["text"] for m in sending.sim.state.messages] == ["Reply"]


async def test_scheduled_broadcast_is_queued_when_due(
        sending: Sending, send_settings: Settings) -> None:
    church, _, _ = await sending.church(members=3)
    send_at = datetime.now(UTC) + timedelta(hours=3)
    doc = await sending.broadcast(church, {"body": "Later", "target": {"all": True},
                                           "send_at": send_at.isoformat()})
    due = await sending.registry_conn.fetchval(
        "SELECT due_at FROM tenant_work WHERE tenant_id = $1", uuid.UUID(church.tenant_id))
    assert abs((due - send_at).total_seconds()) < 1
    clock = {"now": datetime.now(UTC)}
    async with running_worker(sending.client, send_settings, clock=lambda: clock["now"],
                              run=False) as worker:
        assert await worker.step() is False                 # not due yet
        clock["now"] = send_at + timedelta(seconds=1)
        await worker.drain_all()
    assert len(sim_numbers(sending.sim)) == 3
    async with sending.db(church) as db:
        assert await db.fetchval("SELECT status FROM broadcasts WHERE id = $1",
                                 uuid.UUID(doc["id"])) == "sent"


async def test_killed_worker_restarted_sends_no_duplicate_and_loses_no_row(
        sending: Sending, send_settings: Settings, tmp_path: Path) -> None:
    """SIGKILL a real `ywm worker` in the middle of a claimed batch, restart it, SIGTERM the
    second one mid-batch (exit 0, claims released), and let a third finish. Only the sends in
    flight at the kill may end `unknown`: the rest of the dead worker's batch is sent once."""
    church, _, phones = await sending.church(members=300)
    concurrency = 4
    env = {**os.environ, "DATABASE_URL": str(send_settings.database_url),
           "YWM_SECRET_KEY": TEST_SECRET, "YWM_DB_PREFIX": send_settings.db_prefix,
           "TELNYX_API_BASE": sending.sim.base_url, "YWM_SEND_RATE_PER_CHURCH": "100",
           "YWM_SEND_RATE_PER_NUMBER": "0", "YWM_SEND_LEASE_SECONDS": "2",
           "YWM_WORKER_CLAIM_TTL": "2", "YWM_WORKER_POLL_INTERVAL": "0.1",
           "YWM_SEND_BATCH_SIZE": "100", "YWM_SEND_CONCURRENCY": str(concurrency),
           "YWM_LOG_LEVEL": "warning",
           "YWM_BILLING_CATALOGUE": str(ROOMY_CATALOGUE), "YWM_WORKER_RECONCILE_INTERVAL": "3600",
           "YWM_WORKER_METRICS_PORT": str(_free_port())}

    async def spawn(name: str) -> Any:
        out = (tmp_path / f"{name}.log").open("wb")
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ywmessaging", "worker", env=env, stdout=out, stderr=out)

    def at_least(n: int, proc: Any, name: str) -> Any:
        async def check() -> bool:
            if len(sending.sim.state.messages) >= n:
                return True
            if proc.returncode is not None:  # it died on its own: show why
                raise AssertionError((tmp_path / f"{name}.log").read_text())
            return False
        return check

    doc = await sending.broadcast(church, {"body": "Crash test", "target": {"all": True}})
    first = await spawn("first")
    await wait_until(at_least(150, first, "first"), timeout=30)  # half of its second batch
    first.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(first.wait(), 10) == -signal.SIGKILL
    second = await spawn("second")
    await wait_until(at_least(230, second, "second"), timeout=30)
    second.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(second.wait(), 20) == 0, (tmp_path / "second.log").read_text()
    async with sending.db(church) as db:
        left = await db.fetch("SELECT lease_owner FROM outbox WHERE state = 'sending'")
        assert not [r for r in left if f":{second.pid}:" in r["lease_owner"]]  # batch finished
        claim = await sending.registry_conn.fetchval(
            "SELECT claimed_by FROM tenant_work WHERE tenant_id = $1",
            uuid.UUID(church.tenant_id))
        assert claim is None                                   # released on SIGTERM
        third = send_settings.with_(send_lease_seconds=2.0, worker_claim_ttl=2.0)
        async with running_worker(sending.client, third):
            async def settled() -> bool:
                states = await outbox_states(db, doc["id"])
                return set(states) <= {"delivered", "unknown"}
            await wait_until(settled, timeout=30, every=0.2)
            async def finished() -> Any:
                return await db.fetchrow(
                    "SELECT status, completed_at, recipient_count FROM broadcasts "
                    "WHERE id = $1 AND completed_at IS NOT NULL", uuid.UUID(doc["id"]))
            broadcast = await wait_until(finished, timeout=10, every=0.2)
        states = await outbox_states(db, doc["id"])
        unknown_phones = {r["to_phone"] for r in await db.fetch(
            "SELECT to_phone FROM outbox WHERE state = 'unknown'")}
    sent = sim_numbers(sending.sim)
    assert len(sent) == len(set(sent))                          # no duplicate, ever
    assert broadcast["status"] == "sent"                        # a final state, completed
    assert sum(states.values()) == broadcast["recipient_count"] == 300  # the counts add up
    # `unknown`: sends in flight at the kill, and sends accepted but not yet recorded
    assert states.get("unknown", 0) <= concurrency + FLUSH_ROWS
    assert len(set(phones) - set(sent)) <= concurrency          # nobody else went untexted
    delivered = set(phones) - unknown_phones
    assert delivered <= set(sent)                               # delivered rows really went
    assert set(phones) - set(sent) <= unknown_phones            # anyone missed is "unknown"


async def test_worker_process_serves_its_metrics(
        sending: Sending, send_settings: Settings, tmp_path: Path) -> None:
    church, _, _ = await sending.church(members=3)
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": str(send_settings.database_url),
           "YWM_SECRET_KEY": TEST_SECRET, "YWM_DB_PREFIX": send_settings.db_prefix,
           "TELNYX_API_BASE": sending.sim.base_url, "YWM_SEND_RATE_PER_CHURCH": "0",
           "YWM_SEND_RATE_PER_NUMBER": "0", "YWM_WORKER_POLL_INTERVAL": "0.1",
           "YWM_LOG_LEVEL": "warning", "YWM_BILLING_CATALOGUE": str(ROOMY_CATALOGUE),
           "YWM_WORKER_RECONCILE_INTERVAL": "3600", "YWM_WORKER_METRICS_PORT": str(port)}
    doc = await sending.broadcast(church, {"body": "Metrics", "target": {"all": True}})
    log_file = tmp_path / "worker.log"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ywmessaging", "worker", env=env, stdout=log_file.open("wb"),
        stderr=subprocess.STDOUT)
    try:
        async with sending.db(church) as db:
            await wait_until(lambda: states_are(db, doc["id"], {"delivered": 3}), timeout=30)
        figures = await _scrape(sending, port)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 20)
    assert code == 0, log_file.read_text()
    assert figures["sent"] == 3 and figures["send_calls"] == 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _scrape(sending: Sending, port: int) -> dict[str, float]:
    """The figures of a `ywm worker`'s /metrics this test looks at (and /healthz answers)."""
    base = f"http://127.0.0.1:{port}"
    async with sending.client.session.get(f"{base}/healthz") as resp:
        assert resp.status == 200 and (await resp.json())["status"] == "ok"
    async def sent_once() -> Any:
        async with sending.client.session.get(f"{base}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
        figures = {"sent": 0.0, "send_calls": 0.0}
        for line in text.splitlines():
            if line.startswith('ywm_outbox_messages_total{outcome="sent"}'):
                figures["sent"] = float(line.split()[-1])
            if line.startswith("ywm_carrier_request_duration_seconds_count") and \
                    'operation="send"' in line and 'result="ok"' in line:
                figures["send_calls"] = float(line.split()[-1])
        return figures if figures["sent"] else None   # counted when a drain ends
    result: dict[str, float] = await wait_until(sent_once, timeout=20, every=0.2)
    return result
