"""Messaging benchmark: enqueue a 10,000-recipient broadcast, drain it through the carrier
simulator with pacing off, and take inbound webhooks — each against a baseline in the same run.

1. Enqueue: `broadcasts.create` (recipients resolved once, one outbox row each, one
   transaction, quota check, audit row) for N members; baseline: the bare `INSERT ... SELECT`
   of the same rows (rolled back). Goal: under 1 s for 10,000.
2. Drain: one in-process Worker sends the N rows to the simulator (pacing off, receipts off:
   they are the webhook part's cost); baseline: the simulator's own ceiling — the same HTTP
   client, the same concurrency, N bare `POST /v2/messages` with no database at all.
3. Inbound: signed `message.received` webhooks (a member texting the church) posted to
   `POST /webhooks/telnyx` of the real app (verify, store in the registry inbox, answer;
   processing follows in the background); baseline: the same verification and parsing on a
   route without the database step. Rounds alternate.

    .venv/bin/python -m benchmarks.messaging [--quick]
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

from ywmessaging import app as app_module
from ywmessaging.church import Actor
from ywmessaging.config import Settings
from ywmessaging.db import pg
from ywmessaging.keys import REGISTRY_POOL
from ywmessaging.messaging import broadcasts
from ywmessaging.messaging.carrier import SendRequest
from ywmessaging.messaging.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    load_public_key,
    signed_headers,
    verify,
)
from ywmessaging.messaging.simulator import RunningSimulator, start_simulator
from ywmessaging.messaging.simulator.events import envelope, inbound_payload
from ywmessaging.messaging.telnyx import TelnyxCarrier
from ywmessaging.messaging.webhooks import parse_envelope
from ywmessaging.messaging.worker import Worker
from ywmessaging.tenants.runtime import open_supervisor

from .common import Deployment, deployment, progress, quick_main, target_line

# Inbound: Telnyx's default account throughput is 50 messages/s, so 100 webhooks/s verified and
# durably stored is twice what one account can send us.
GOALS = {"enqueue_s": 1.0, "drain_vs_sim_ceiling": 0.5, "inbound_per_s": 100.0}
CHURCH_NUMBER = "+12065550100"
CONCURRENCY = 16
BARE_INSERT = """
INSERT INTO outbox (broadcast_id, member_id, to_phone, body, segments)
SELECT $1, m.id, m.phone, 'bare', 1 FROM members m WHERE m.opt_in = 'opted_in'
"""


def higher_is_better(name: str, value: float, goal: float) -> str:
    """A TARGET line for a figure that should reach `goal`."""
    return f"TARGET {name} value={value:.3g} goal=>={goal:g} {'pass' if value >= goal else 'miss'}"


async def _prepare(dep: Deployment, n: int) -> tuple[Any, Any]:
    tenant = await dep.provisioner.provision("Messaging Benchmark Church")
    db = await pg.connect(dep.admin.with_db(tenant.db_name))
    await db.execute("UPDATE settings SET sender_number = $1", CHURCH_NUMBER)
    await db.execute(
        "INSERT INTO members (first_name, last_name, phone) "
        "SELECT 'Member', 'No ' || i, '+1303' || lpad(i::text, 7, '0') "
        "FROM generate_series(1, $1) AS i", n)
    await db.execute("ANALYZE members")
    await dep.registry.execute("INSERT INTO phone_numbers (e164, tenant_id) VALUES ($1, $2)",
                               CHURCH_NUMBER, tenant.id)
    return tenant, db


async def _enqueue(dep: Deployment, settings: Settings, sup: Any, tenant: Any, db: Any,
                   rounds: int) -> tuple[list[float], list[float], Any]:
    draft = broadcasts.Draft("Easter services at 9 and 11. All welcome!",
                             broadcasts.Target("all"))
    actor = Actor(None, None, "benchmark")  # type: ignore[arg-type]  # no admin: a system run
    made, bare, last = [], [], None
    for i in range(rounds):
        async with sup.lease(tenant.id) as conn:
            t0 = time.perf_counter()
            last = await broadcasts.create(conn, dep.registry, settings, tenant.id, actor,
                                           draft, datetime.now(UTC))
            made.append(time.perf_counter() - t0)
        bid = await db.fetchval("INSERT INTO broadcasts (body, target_kind) VALUES ('b', 'all') "
                                "RETURNING id")
        async with db.transaction():
            t0 = time.perf_counter()
            await db.execute(BARE_INSERT, bid)
            bare.append(time.perf_counter() - t0)
            await db.execute("DELETE FROM broadcasts WHERE id = $1", bid)
        if i < rounds - 1:  # keep only the last broadcast's rows for the drain
            await db.execute("DELETE FROM broadcasts WHERE id = $1", last["id"])
        progress(f"  enqueue round {i + 1}: {made[-1] * 1000:.0f} ms (bare {bare[-1] * 1000:.0f})")
    return made, bare, last


async def _sim_ceiling(sim: RunningSimulator, n: int) -> float:
    carrier = TelnyxCarrier(api_base=sim.base_url, api_key="bench")
    left = n

    async def one() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await carrier.send(SendRequest("+12065550100", f"+1404{left:07d}", "ceiling"))

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(CONCURRENCY)))
        return n / (time.perf_counter() - t0)
    finally:
        await carrier.close()


async def _drain(settings: Settings, dep: Deployment, sup: Any, n: int,
                 sim: RunningSimulator) -> float:
    carrier = TelnyxCarrier(api_base=sim.base_url, api_key="bench")
    worker = Worker(settings, dep.registry, sup, carrier)
    sim.state.messages.clear()
    try:
        t0 = time.perf_counter()
        await worker.drain_all()
        elapsed = time.perf_counter() - t0
    finally:
        await carrier.close()
    sent = len(sim.state.messages)
    if sent != n or worker.stats.sent != n:
        raise RuntimeError(f"drain sent {sent} (recorded {worker.stats.sent}) of {n}")
    return n / elapsed


def _add_bench_route(app: web.Application, public_key: str) -> None:
    key = load_public_key(public_key)

    async def verify_only(request: web.Request) -> web.Response:
        raw = await request.read()
        verify(key, request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER),
               raw)
        parse_envelope(raw)
        return web.json_response({"status": "stored"})

    app.router.add_post("/bench/webhooks-nodb", verify_only)


def _events(sim: RunningSimulator, n: int) -> list[tuple[bytes, dict[str, str]]]:
    out = []
    for i in range(n):
        doc = envelope("message.received",
                       inbound_payload(f"+1303{i % 5000 + 1:07d}", CHURCH_NUMBER, f"Amen {i}"))
        doc["meta"] = {"attempt": 1, "delivered_to": "bench"}
        raw = orjson.dumps(doc)
        out.append((raw, {"Content-Type": "application/json",
                          **signed_headers(sim.state.key, raw)}))
    return out


async def _post_all(http: aiohttp.ClientSession, url: str,
                    events: list[tuple[bytes, dict[str, str]]]) -> float:
    todo = list(events)

    async def one() -> None:
        while todo:
            raw, headers = todo.pop()
            async with http.post(url, data=raw, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{url} answered {resp.status}")

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(CONCURRENCY)))
    return len(events) / (time.perf_counter() - t0)


async def _inbound(settings: Settings, sim: RunningSimulator, n: int,
                   rounds: int) -> tuple[float, float, float]:
    app = app_module.create_app(settings)
    _add_bench_route(app, sim.public_key)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}"
    with_db, without = [], []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
            for i in range(rounds):
                with_db.append(await _post_all(http, f"{base}/webhooks/telnyx",
                                               _events(sim, n)))
                without.append(await _post_all(http, f"{base}/bench/webhooks-nodb",
                                               _events(sim, n)))
                progress(f"  inbound round {i + 1}: {with_db[-1]:.0f}/s stored, "
                         f"{without[-1]:.0f}/s without the database")
            processed = await _settle(app)
    finally:
        await server.close()
    return max(with_db), max(without), processed


async def _settle(app: web.Application, timeout: float = 120.0) -> float:
    """Wait (bounded) until the app processed every stored event; the seconds it took."""
    pool = app[REGISTRY_POOL]
    left = "SELECT count(*) FROM webhook_inbox WHERE state IN ('received', 'processing', 'failed')"
    t0 = time.perf_counter()
    for _ in range(int(timeout / 0.25)):
        if not await pool.fetchval(left):
            break
        await asyncio.sleep(0.25)
    return time.perf_counter() - t0


async def run(quick: bool) -> list[str]:
    """Measure everything; the TARGET lines."""
    n, rounds, inbound_n = (2000, 1, 300) if quick else (10_000, 3, 2000)
    async with deployment() as dep:
        sim = await start_simulator()
        sim.state.receipts = False
        sim.state.add_number(CHURCH_NUMBER)   # the account owns the church's sender number
        settings = dep.settings.with_(
            telnyx_api_base=sim.base_url, telnyx_api_key="bench", telnyx_public_key=sim.public_key,
            send_rate_per_church=0.0, send_rate_per_number=0.0,
            send_concurrency=CONCURRENCY, send_batch_size=500, send_lease_seconds=120.0)
        runtime = await open_supervisor(settings, dep.box, dep.registry, kind="worker")
        try:
            progress(f"a church with {n} members")
            tenant, db = await _prepare(dep, n)
            made, bare, _ = await _enqueue(dep, settings, runtime.supervisor, tenant, db, rounds)
            progress(f"simulator ceiling: {n} bare sends, {CONCURRENCY} in flight")
            ceiling = await _sim_ceiling(sim, n)
            progress(f"draining {n} rows through the simulator")
            rate = await _drain(settings, dep, runtime.supervisor, n, sim)
            await db.close()
            progress(f"inbound: {rounds} rounds of {inbound_n} webhooks each way")
            stored, nodb, processed = await _inbound(settings, sim, inbound_n, rounds)
        finally:
            await runtime.close()
            await sim.stop()
    best, base = min(made), min(bare)
    print(f"enqueue {n} recipients: best {best * 1000:.0f} ms (bare INSERT ... SELECT "
          f"{base * 1000:.0f} ms, ratio {best / base:.2f})")
    print(f"drain {n}: {rate:.0f} msg/s; simulator ceiling {ceiling:.0f} msg/s "
          f"(ratio {rate / ceiling:.2f})")
    print(f"inbound webhooks: {stored:.0f}/s verified and stored; {nodb:.0f}/s verified "
          f"without the database (ratio {stored / nodb:.2f}); processing caught up "
          f"{processed:.1f} s after the last post")
    label = "10k" if n == 10_000 else f"{n // 1000}k"
    goal = GOALS["enqueue_s"] * n / 10_000
    return [target_line(f"enqueue_{label}_s", best, goal),
            higher_is_better("drain_vs_sim_ceiling", rate / ceiling, GOALS["drain_vs_sim_ceiling"]),
            higher_is_better("inbound_webhooks_per_s", stored, GOALS["inbound_per_s"])]


def main() -> None:
    """Parse arguments, run, print the TARGET lines."""
    quick_main(__doc__, run, quick_help="smaller sizes, under a minute")


if __name__ == "__main__":
    main()
